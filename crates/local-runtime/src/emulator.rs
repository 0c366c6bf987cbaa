//! The default AWS emulator: moto servers, installed into a project-local virtualenv with the
//! pinned versions of `infra/requirements.txt`, started on free loopback ports and stopped with
//! their owner. DynamoDB is served by a server of its own, as on AWS an independent service:
//! one Python process serving every API would make each API call wait for every other service's
//! load. They run through `infra/moto_server.py`, which makes moto's DynamoDB transactions
//! isolated under concurrent requests (see that file).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sdk::Endpoints;

/// The project's root directory (where `template.yaml` and `infra/` are).
pub fn project_root() -> PathBuf {
    // This crate lives in crates/local-runtime.
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (CI shares one between clones), relative to the
/// project root when relative, or the project's `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => project_root().join("target"),
    }
}

fn local_dir() -> PathBuf {
    project_root().join(".local")
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("setting up the emulator: {0}")]
    Setup(String),
    #[error("starting the emulator: {0}")]
    Start(String),
}

fn setup_error(context: &str) -> impl Fn(std::io::Error) -> EmulatorError + '_ {
    move |e| EmulatorError::Setup(format!("{context}: {e}"))
}

fn run(command: &mut Command, what: &str) -> Result<(), EmulatorError> {
    let output = command.output().map_err(setup_error(what))?;
    if output.status.success() {
        return Ok(());
    }
    Err(EmulatorError::Setup(format!(
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// Creates `.local/venv` and installs the pinned emulator into it, unless that was already done
/// for the current `infra/requirements.txt`. Safe to call from several processes at once.
pub fn install() -> Result<PathBuf, EmulatorError> {
    python_env("venv", "infra/requirements.txt", || {
        eprintln!(
            "Installing the local AWS emulator (moto, pinned) into .local/venv; this happens once..."
        )
    })
}

/// The Python of the virtualenv `.local/<name>` holding the pinned packages of `requirements`
/// (a path in the project), made by `infra/python-env.sh` unless it holds them already;
/// `announce` runs before it is made. `PYTHON` names the interpreter (default `python3`). Safe to
/// call from several processes at once.
pub fn python_env(
    name: &str,
    requirements: &str,
    announce: impl FnOnce(),
) -> Result<PathBuf, EmulatorError> {
    let wanted = std::fs::read(project_root().join(requirements))
        .map_err(setup_error("reading requirements"))?;
    let stamp = lambda_kit::idempotency::sha256_hex(&wanted);
    std::fs::create_dir_all(local_dir()).map_err(setup_error("creating .local"))?;
    let lock =
        File::create(local_dir().join(format!("{name}.lock"))).map_err(setup_error("lock"))?;
    lock.lock().map_err(setup_error("lock"))?;

    let venv = local_dir().join(name);
    let python = venv.join("bin/python");
    let marker = std::fs::read_to_string(venv.join(".installed")).ok();
    if marker.as_deref() == Some(stamp.as_str()) && python.exists() {
        return Ok(python);
    }
    announce();
    let progress = crate::progress::Progress::new(&format!("installing .local/{name}"), None);
    progress.set(
        0,
        format!("uv, a virtualenv and the packages of {requirements}"),
    );
    let made = run(
        Command::new("bash")
            .arg(project_root().join("infra/python-env.sh"))
            .args([name, requirements]),
        "infra/python-env.sh",
    );
    progress.finish(match &made {
        Ok(()) => "installed",
        Err(_) => "failed",
    });
    made?;
    Ok(python)
}

/// The running moto servers: DynamoDB on one, every other service on the other. Dropping it
/// stops them.
#[derive(Debug)]
pub struct Emulator {
    services: Server,
    dynamodb: Server,
}

impl Emulator {
    /// Installs (if needed) and starts the servers on free ports; returns once both answer.
    pub fn start() -> Result<Self, EmulatorError> {
        Self::start_on(None)
    }

    /// As [`Emulator::start`], with every service but DynamoDB on `port` and DynamoDB on the
    /// next port when a port is given (where functions run by another tool, such as
    /// `cargo lambda watch`, expect the emulator).
    pub fn start_on(port: Option<u16>) -> Result<Self, EmulatorError> {
        let python = install()?;
        let dynamodb_port = port
            .map(|p| {
                p.checked_add(1)
                    .ok_or_else(|| EmulatorError::Start(format!("no port after {p} for DynamoDB")))
            })
            .transpose()?;
        // Started side by side: each takes a second or two to import moto.
        let (services, dynamodb) = std::thread::scope(|scope| {
            let dynamodb = scope.spawn(|| Server::start(&python, dynamodb_port));
            let services = Server::start(&python, port);
            let dynamodb = dynamodb
                .join()
                .map_err(|_| EmulatorError::Start("starting moto panicked".to_owned()))?;
            Ok::<_, EmulatorError>((services?, dynamodb?))
        })?;
        Ok(Self { services, dynamodb })
    }

    /// Where each AWS API is served, for the AWS SDK.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            default: self.services.endpoint.clone(),
            services: BTreeMap::from([("DYNAMODB".to_owned(), self.dynamodb.endpoint.clone())]),
        }
    }
}

/// One moto server process. Dropping it stops the process.
#[derive(Debug)]
struct Server {
    pid: u32,
    endpoint: String,
    log: PathBuf,
}

impl Server {
    /// Starts moto on the loopback `port` (a free one if `None`); returns once it answers.
    fn start(python: &Path, port: Option<u16>) -> Result<Self, EmulatorError> {
        let python = python.to_owned();
        let port = match port {
            Some(port) => port_available(port)?,
            None => free_port()?,
        };
        let log = local_dir().join(format!("moto-{port}.log"));
        let log_file = File::create(&log).map_err(|e| EmulatorError::Start(e.to_string()))?;

        // The child is spawned, and waited for, by a thread of its own that lives exactly as long
        // as the child. PR_SET_PDEATHSIG fires when the spawning thread ends, so tying it to this
        // thread (and not to a short-lived async worker) means: the server dies with this process
        // (even on SIGKILL) and not before.
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("moto-{port}"))
            .spawn(move || {
                let mut command = Command::new(&python);
                command
                    .arg(project_root().join("infra/moto_server.py"))
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log_file);
                die_with_parent(&mut command);
                match command.spawn() {
                    Ok(mut child) => {
                        let _ = sender.send(Ok(child.id()));
                        let _ = child.wait();
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| EmulatorError::Start(e.to_string()))?;
        let pid = receiver
            .recv()
            .map_err(|e| EmulatorError::Start(e.to_string()))?
            .map_err(EmulatorError::Start)?;
        let server = Server {
            pid,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        server.wait_until_ready(SocketAddr::from(([127, 0, 0, 1], port)))?;
        Ok(server)
    }

    fn wait_until_ready(&self, address: SocketAddr) -> Result<(), EmulatorError> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            // SAFETY: kill with signal 0 only checks that the process exists.
            if unsafe { libc::kill(self.pid as libc::pid_t, 0) } != 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut log = String::new();
        let _ = File::open(&self.log).and_then(|mut f| f.read_to_string(&mut log));
        Err(EmulatorError::Start(format!(
            "moto did not come up on {address}; its log says:\n{log}"
        )))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid; its keeper thread reaps it.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child being created.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `port`, if nothing listens on it (a second emulator, or another program): said plainly here,
/// where moto would only log it.
fn port_available(port: u16) -> Result<u16, EmulatorError> {
    TcpListener::bind(("127.0.0.1", port))
        .map(|_| port)
        .map_err(|e| EmulatorError::Start(format!("port {port} is not free for the emulator: {e}")))
}

fn free_port() -> Result<u16, EmulatorError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| EmulatorError::Start(e.to_string()))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| EmulatorError::Start(e.to_string()))
}

/// Subjects of the e-mails moto's SES has accepted (moto's `/moto-api/data.json`), so tests and
/// the audit can count confirmation e-mails per order.
pub async fn sent_email_subjects(
    endpoint: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let answer =
        crate::client::send("GET", &format!("{endpoint}/moto-api/data.json"), &[], "").await?;
    let data = answer.json();
    Ok(data["ses"]["Message"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["subject"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}
