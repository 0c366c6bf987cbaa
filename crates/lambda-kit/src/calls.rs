//! Every AWS call a function makes, counted: one SDK interceptor ([`CallCounter`]) on every
//! client the functions build counts the calls per function, service and API, and sizes
//! DynamoDB's write and read units by AWS's rules ([`crate::capacity`]) from the items in the
//! request and the response. The counts are what the benchmarks price an order from.
//!
//! The function is the one whose invocation is running: the kit's runners wrap each invocation
//! in [`scope`] (a task-local name), so a client needs no label and a call made outside any
//! invocation (an operator tool) is not counted.
//!
//! What a request does not tell: an `UpdateItem` or `DeleteItem` (alone or in a transaction) is
//! charged on the larger of the item before and after, which neither its request nor its
//! response (without `ReturnValues`) carries. Those writes are counted at the units of their
//! key and values (a lower bound) and also in [`CallTally::unsized_writes`], so a total says how
//! much of it is a floor.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use crate::capacity::{item_size, read_units, write_units};

tokio::task_local! {
    static FUNCTION: &'static str;
}

/// Runs `work` as an invocation of `function`: the calls it makes are counted as its.
pub async fn scope<T>(function: &'static str, work: impl Future<Output = T>) -> T {
    FUNCTION.scope(function, work).await
}

/// A DynamoDB client whose calls are counted.
pub fn dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(CallCounter)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An SQS client whose calls are counted.
pub fn sqs_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::from(sdk)
        .interceptor(CallCounter)
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Which calls a tally is of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallKey {
    /// The function that made them.
    pub function: &'static str,
    /// The AWS service (as the SDK names it: `DynamoDB`, `SNS`, `SQS`, ...).
    pub service: String,
    /// The API (`PutItem`, `Publish`, ...).
    pub operation: String,
}

/// What the calls of one key added up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallTally {
    pub calls: u64,
    /// Calls that failed (a refused condition among them).
    pub failed: u64,
    pub write_units: f64,
    pub read_units: f64,
    /// Writes whose charge depends on an item the request does not carry (counted at a lower
    /// bound in `write_units`).
    pub unsized_writes: u64,
}

static CALLS: Mutex<BTreeMap<CallKey, CallTally>> = Mutex::new(BTreeMap::new());

/// Every tally so far.
pub fn snapshot() -> BTreeMap<CallKey, CallTally> {
    CALLS.lock().map(|c| c.clone()).unwrap_or_default()
}

/// Forgets every tally (between measurements).
pub fn reset() {
    if let Ok(mut calls) = CALLS.lock() {
        calls.clear();
    }
}

/// What a request tells of its cost before it is sent: the write units of its items, and
/// whether its reads are strongly consistent (DynamoDB's default: eventually).
#[derive(Debug, Clone, Default)]
struct RequestUnits {
    write_units: f64,
    unsized_writes: u64,
    consistent: bool,
}

impl Storable for RequestUnits {
    type Storer = StoreReplace<Self>;
}

/// The interceptor: add it to every client a function builds
/// (`<service>::config::Builder::from(sdk).interceptor(CallCounter)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallCounter;

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(units) = dynamodb::request_units(context.input()) {
            cfg.interceptor_state().store_put(units);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Ok(function) = FUNCTION.try_with(|f| *f) else {
            return Ok(());
        };
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let key = CallKey {
            function,
            service: metadata.service().to_owned(),
            operation: metadata.name().to_owned(),
        };
        let request = cfg.load::<RequestUnits>().cloned().unwrap_or_default();
        let outcome = context.output_or_error();
        let failed = !matches!(outcome, Some(Ok(_)));
        let read = match outcome {
            Some(Ok(output)) => dynamodb::response_read_units(output, request.consistent),
            _ => 0.0,
        };
        if let Ok(mut calls) = CALLS.lock() {
            let tally = calls.entry(key).or_default();
            tally.calls += 1;
            tally.failed += u64::from(failed);
            tally.write_units += request.write_units;
            tally.unsized_writes += request.unsized_writes;
            tally.read_units += read;
        }
        Ok(())
    }
}

/// Sizing DynamoDB's requests and responses.
mod dynamodb {
    use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
    use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
    use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
    use aws_sdk_dynamodb::operation::put_item::PutItemInput;
    use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
    use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
    use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};

    use super::*;

    /// An update's lower bound: its key and the values it sets.
    fn update_floor(
        key: Option<&HashMap<String, AttributeValue>>,
        values: Option<&HashMap<String, AttributeValue>>,
    ) -> usize {
        key.map(item_size).unwrap_or_default() + values.map(item_size).unwrap_or_default()
    }

    pub(super) fn request_units(input: &Input) -> Option<RequestUnits> {
        if let Some(put) = input.downcast_ref::<PutItemInput>() {
            let size = put.item().map(item_size).unwrap_or_default();
            return Some(RequestUnits {
                write_units: write_units(size, false),
                ..RequestUnits::default()
            });
        }
        if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            let floor = update_floor(update.key(), update.expression_attribute_values());
            return Some(RequestUnits {
                write_units: write_units(floor, false),
                unsized_writes: 1,
                ..RequestUnits::default()
            });
        }
        if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            let floor = delete.key().map(item_size).unwrap_or_default();
            return Some(RequestUnits {
                write_units: write_units(floor, false),
                unsized_writes: 1,
                ..RequestUnits::default()
            });
        }
        if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            let mut units = RequestUnits::default();
            for write in transaction.transact_items() {
                let (size, sized) = if let Some(put) = write.put() {
                    (item_size(put.item()), true)
                } else if let Some(update) = write.update() {
                    let floor =
                        update_floor(Some(update.key()), update.expression_attribute_values());
                    (floor, false)
                } else if let Some(delete) = write.delete() {
                    (item_size(delete.key()), false)
                } else if let Some(check) = write.condition_check() {
                    (item_size(check.key()), false)
                } else {
                    continue;
                };
                units.write_units += write_units(size, true);
                units.unsized_writes += u64::from(!sized);
            }
            return Some(units);
        }
        // Reads are sized from their response; how consistent they are is in the request.
        let consistent = if let Some(get) = input.downcast_ref::<GetItemInput>() {
            get.consistent_read()
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            query.consistent_read()
        } else if let Some(scan) = input.downcast_ref::<ScanInput>() {
            scan.consistent_read()
        } else if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
            batch
                .request_items()
                .map(|tables| tables.values().any(|k| k.consistent_read() == Some(true)))
        } else {
            return None;
        };
        Some(RequestUnits {
            consistent: consistent.unwrap_or(false),
            ..RequestUnits::default()
        })
    }

    pub(super) fn response_read_units(output: &Output, consistent: bool) -> f64 {
        if let Some(get) = output.downcast_ref::<GetItemOutput>() {
            return match get.item() {
                Some(item) => read_units(item_size(item), consistent, false),
                // A read of a missing item still costs a unit.
                None => read_units(0, consistent, false),
            };
        }
        if let Some(batch) = output.downcast_ref::<BatchGetItemOutput>() {
            return batch
                .responses()
                .into_iter()
                .flat_map(|tables| tables.values())
                .flatten()
                .map(|item| read_units(item_size(item), consistent, false))
                .sum();
        }
        if let Some(query) = output.downcast_ref::<QueryOutput>() {
            let bytes: usize = query.items().iter().map(item_size).sum();
            return read_units(bytes, consistent, false);
        }
        if let Some(scan) = output.downcast_ref::<ScanOutput>() {
            let bytes: usize = scan.items().iter().map(item_size).sum();
            return read_units(bytes, consistent, false);
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// DynamoDB as far as these tests need it: a GetItem finds a small item, anything else
    /// succeeds with nothing to say.
    #[derive(Debug, Clone)]
    struct Answers;

    impl HttpConnector for Answers {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let target = request.headers().get("x-amz-target").unwrap_or_default();
            let body = if target.ends_with(".GetItem") {
                r#"{"Item": {"pk": {"S": "a"}, "n": {"N": "12"}}}"#
            } else {
                "{}"
            };
            let status = 200u16.try_into().expect("200 is a status");
            HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(body))))
        }
    }

    impl HttpClient for Answers {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    fn client() -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .http_client(Answers)
            .interceptor(CallCounter)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn s(value: &str) -> AttributeValue {
        AttributeValue::S(value.into())
    }

    #[tokio::test]
    async fn calls_are_counted_per_function_and_api_with_their_units() {
        let client = client();
        let get = |consistent: bool| {
            client
                .get_item()
                .table_name("t")
                .key("pk", s("a"))
                .consistent_read(consistent)
                .send()
        };
        scope("calls-test", async {
            // 2 + 1 + 1 + (1 + 1 + 2) + 1 = 9 bytes: one write unit.
            client
                .put_item()
                .table_name("t")
                .item("pk", s("a"))
                .item("n", AttributeValue::N("12".into()))
                .send()
                .await
                .unwrap();
            get(true).await.unwrap();
            get(false).await.unwrap();
            let put = Put::builder()
                .table_name("t")
                .item("pk", s("b"))
                .build()
                .unwrap();
            let update = Update::builder()
                .table_name("t")
                .key("pk", s("a"))
                .update_expression("SET n = :n")
                .expression_attribute_values(":n", AttributeValue::N("13".into()))
                .build()
                .unwrap();
            client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put).build())
                .transact_items(TransactWriteItem::builder().update(update).build())
                .send()
                .await
                .unwrap();
        })
        .await;
        // Outside an invocation: not counted.
        get(false).await.unwrap();

        let tallies: BTreeMap<String, CallTally> = snapshot()
            .into_iter()
            .filter(|(key, _)| key.function == "calls-test")
            .map(|(key, tally)| {
                assert_eq!(key.service, "DynamoDB");
                (key.operation, tally)
            })
            .collect();
        assert_eq!(tallies["PutItem"].calls, 1);
        assert_eq!(tallies["PutItem"].write_units, 1.0);
        // One strongly consistent read (1 unit) and one eventually consistent (half).
        assert_eq!(tallies["GetItem"].calls, 2);
        assert_eq!(tallies["GetItem"].read_units, 1.5);
        // A transaction doubles: the put 2 units, the update at least 2, sized from its key and
        // value only.
        let transaction = &tallies["TransactWriteItems"];
        assert_eq!(transaction.write_units, 4.0);
        assert_eq!(transaction.unsized_writes, 1);
        assert_eq!(tallies.len(), 3);
    }
}
