//! A minimal Lambda Runtime API on localhost, and a measured run of a function process under
//! it: the time from process start to its first `next` (ready for its first event), its CPU
//! time and peak memory (from /proc), and its answers.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use tokio::sync::Notify;

use crate::system::BenchResult;

#[derive(Debug, Clone, Default)]
pub struct ProcessRun {
    /// From spawning the process to its first `GET .../invocation/next`.
    pub init: Duration,
    /// CPU time (user + system) spent before the first `next`, and in all.
    pub init_cpu: Duration,
    pub total_cpu: Duration,
    /// From the first `next` to the `next` after the last event: the events' processing.
    pub processing: Duration,
    /// Peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: u64,
    /// The function's answers, in order; `Err` for invocation errors.
    pub answers: Vec<Result<String, String>>,
}

#[derive(Default)]
struct State {
    events: Vec<String>,
    next_event: usize,
    pid: Option<u32>,
    first_next: Option<(Instant, Duration)>,
    /// (request id -> answer) and how many answers are in.
    answers: HashMap<usize, Result<String, String>>,
    init_error: Option<String>,
}

/// Runs `program` as a Lambda function under a local Runtime API, feeds it `events` one
/// invocation at a time, and stops it when it asks for the event after the last.
pub async fn run_function(
    program: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
    events: Vec<String>,
) -> BenchResult<ProcessRun> {
    let count = events.len();
    let state = Arc::new(Mutex::new(State {
        events,
        ..State::default()
    }));
    let drained = Arc::new(Notify::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (_stop, never) = tokio::sync::watch::channel(false);
    let server = {
        let (state, drained) = (state.clone(), drained.clone());
        local_runtime::http::serve(listener, never, move |request| {
            let (state, drained) = (state.clone(), drained.clone());
            async move { answer(request, &state, &drained).await }
        })
    };

    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().cloned())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the function exited at once")?;
    lock(&state).pid = Some(pid);
    let mut stderr = child.stderr.take();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            use tokio::io::AsyncReadExt;
            let _ = stderr.read_to_string(&mut text).await;
        }
        text
    });

    let finished = tokio::select! {
        _ = drained.notified() => true,
        _ = child.wait() => false,
        _ = tokio::time::sleep(Duration::from_secs(900)) => false,
    };
    let drained_at = Instant::now();
    let (total_cpu, peak_rss_kib) = cpu_and_peak_memory(pid).unwrap_or_default();
    let _ = child.kill().await;
    server.abort();
    let log = log.await.unwrap_or_default();
    let state = lock(&state);
    if !finished {
        return Err(format!(
            "{} stopped before answering {count} events ({}); its log:\n{log}",
            program.display(),
            state.init_error.clone().unwrap_or_default()
        )
        .into());
    }
    let (first_next, init_cpu) = state.first_next.ok_or("no first next")?;
    Ok(ProcessRun {
        init: first_next.duration_since(started),
        init_cpu,
        processing: drained_at.duration_since(first_next),
        total_cpu,
        peak_rss_kib,
        answers: (0..count)
            .map(|i| {
                state
                    .answers
                    .get(&i)
                    .cloned()
                    .unwrap_or(Err("no answer".into()))
            })
            .collect(),
    })
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// (user + system CPU time, VmHWM in KiB) of a running process.
fn cpu_and_peak_memory(pid: u32) -> Option<(Duration, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu = Duration::from_micros(ticks * 1_000_000 / per_second);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Some((cpu, peak))
}

async fn answer(
    request: hyper::Request<Incoming>,
    state: &Mutex<State>,
    drained: &Notify,
) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let parts: Vec<&str> = path
        .trim_start_matches("/2018-06-01/runtime/")
        .split('/')
        .collect();
    match parts.as_slice() {
        ["invocation", "next"] => {
            let next = {
                let mut state = lock(state);
                if state.first_next.is_none() {
                    let cpu = state
                        .pid
                        .and_then(cpu_and_peak_memory)
                        .map(|(cpu, _)| cpu)
                        .unwrap_or_default();
                    state.first_next = Some((Instant::now(), cpu));
                }
                let index = state.next_event;
                state.next_event += 1;
                state.events.get(index).cloned().map(|event| (index, event))
            };
            match next {
                Some((index, event)) => invocation(index, event),
                None => {
                    drained.notify_one();
                    // Never answered: the process is stopped, as Lambda freezes it.
                    std::future::pending::<()>().await;
                    status(500)
                }
            }
        }
        ["invocation", id, outcome] => {
            let mut state = lock(state);
            if let Ok(index) = id.parse::<usize>() {
                let result = if *outcome == "response" {
                    Ok(body)
                } else {
                    Err(body)
                };
                state.answers.insert(index, result);
            }
            status(202)
        }
        ["init", "error"] => {
            lock(state).init_error = Some(body);
            status(202)
        }
        _ => status(404),
    }
}

fn invocation(index: usize, event: String) -> hyper::Response<Full<Bytes>> {
    let deadline = SystemTime::now() + Duration::from_secs(900);
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut response = hyper::Response::new(Full::new(Bytes::from(event)));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", index.to_string());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
    );
    set(
        "lambda-runtime-trace-id",
        format!("Root=1-00000000-{index:024}"),
    );
    set("content-type", "application/json".to_owned());
    response
}

fn status(code: u16) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
    response
}
