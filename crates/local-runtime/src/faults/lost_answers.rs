//! Lost answers, for crash scenarios: a consumer whose answer is lost has done its work, yet
//! the event source mapping deletes nothing it covers; those records come back after the
//! visibility timeout under the same message ids, as when a function crashes after its effects
//! and before answering.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_kit::consumer::{BoxFuture, InvocationError, SqsConsumer};

/// What becomes of a function's invocation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acknowledgements {
    /// Answers are honoured (what Lambda does).
    #[default]
    Kept,
    /// Every answer is lost: each invocation looks failed.
    Lost,
    /// The answer about each message's first delivery is lost (reported as a batch item
    /// failure, so this needs `ReportBatchItemFailures`); later ones are kept.
    FirstLost,
}

#[derive(Debug, Default)]
struct State {
    modes: HashMap<String, Acknowledgements>,
    /// (function, message id) seen on an invocation whose answer was lost.
    seen: HashSet<(String, String)>,
}

/// The modes of every function, shared by the consumers it wraps.
#[derive(Debug, Clone, Default)]
pub struct LostAnswers(Arc<Mutex<State>>);

impl LostAnswers {
    pub fn set(&self, function: &str, mode: Acknowledgements) {
        self.state().modes.insert(function.to_owned(), mode);
    }

    /// `consumer`, whose answers are lost while `function`'s mode says so.
    pub fn wrap(&self, function: &str, consumer: Arc<dyn SqsConsumer>) -> Arc<dyn SqsConsumer> {
        Arc::new(Lossy {
            function: function.to_owned(),
            inner: consumer,
            answers: self.clone(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The mode of `function` and, under [`Acknowledgements::FirstLost`], the message ids of
    /// `batch` delivered for the first time.
    fn lost(&self, function: &str, batch: &SqsEvent) -> (Acknowledgements, Vec<String>) {
        let mut state = self.state();
        let mode = state.modes.get(function).copied().unwrap_or_default();
        let mut first = Vec::new();
        if mode == Acknowledgements::FirstLost {
            for record in &batch.records {
                let id = record.message_id.clone().unwrap_or_default();
                if state.seen.insert((function.to_owned(), id.clone())) {
                    first.push(id);
                }
            }
        }
        (mode, first)
    }
}

struct Lossy {
    function: String,
    inner: Arc<dyn SqsConsumer>,
    answers: LostAnswers,
}

impl SqsConsumer for Lossy {
    fn service(&self) -> &'static str {
        self.inner.service()
    }

    fn handle(
        &self,
        batch: SqsEvent,
        deadline: SystemTime,
    ) -> BoxFuture<'_, Result<SqsBatchResponse, InvocationError>> {
        Box::pin(async move {
            let (mode, first) = self.answers.lost(&self.function, &batch);
            let records = batch.records.len();
            let mut answer = self.inner.handle(batch, deadline).await;
            match mode {
                Acknowledgements::Kept => {}
                Acknowledgements::Lost => {
                    tracing::warn!(function = %self.function, records, "answer lost; these records will be delivered again");
                    answer = Err("the invocation's answer was lost".into());
                }
                Acknowledgements::FirstLost => {
                    if let Ok(response) = &mut answer {
                        tracing::warn!(function = %self.function, records = first.len(), "answer about first deliveries lost; they will be delivered again");
                        for id in first {
                            let mut failure = BatchItemFailure::default();
                            failure.item_identifier = id;
                            response.batch_item_failures.push(failure);
                        }
                    }
                }
            }
            answer
        })
    }
}
