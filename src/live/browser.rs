//! A real browser for the live view: Debian's headless Chromium, driven over WebDriver through
//! its chromedriver (the packages `chromium` and `chromium-driver`, which `infra/browser.sh`
//! installs the first time they are needed).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the browser and its driver are looked for (`CHROMIUM`, `CHROMEDRIVER` override).
fn program(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Runs `infra/browser.sh` once per process (tests start browsers concurrently).
async fn install() -> Result<(), BoxError> {
    static INSTALL: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    INSTALL
        .get_or_init(|| async {
            let script = local_runtime::emulator::project_root().join("infra/browser.sh");
            match tokio::process::Command::new(&script).status().await {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(format!("{} failed ({status})", script.display())),
                Err(e) => Err(format!("{} did not run: {e}", script.display())),
            }
        })
        .await
        .clone()
        .map_err(Into::into)
}

/// A headless Chromium session; the driver process stops when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium window of `width` x
    /// `height` pixels.
    pub async fn start(width: u32, height: u32) -> Result<Self, BoxError> {
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        if !(chromium.exists() && chromedriver.exists()) {
            install().await?;
        }
        for path in [&chromium, &chromedriver] {
            if !path.exists() {
                return Err(format!(
                    "{} is missing: install Debian's chromium and chromium-driver (infra/browser.sh)",
                    path.display()
                )
                .into());
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let profile =
            std::env::temp_dir().join(format!("orderflow-chromium-{}", uuid::Uuid::now_v7()));
        // Chromium as root needs --no-sandbox; the network flags keep it from calling home on
        // a machine without internet.
        let options = serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let browser = Browser {
            client: loop {
                match builder.connect(&url).await {
                    Ok(client) => break client,
                    Err(e) if started.elapsed() > Duration::from_secs(30) => {
                        return Err(format!("chromedriver did not start a session: {e}").into())
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            },
            driver,
            profile,
        };
        browser.client.set_window_size(width, height).await?;
        Ok(browser)
    }

    /// Runs `script` in the page and answers what it returns (as JSON).
    pub async fn eval(&self, script: &str) -> Result<serde_json::Value, BoxError> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Polls `script` until it returns something truthy, or fails after `timeout`.
    pub async fn wait_for(
        &self,
        script: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, BoxError> {
        let started = Instant::now();
        loop {
            let value = self.eval(script).await?;
            let truthy = !matches!(
                &value,
                serde_json::Value::Null | serde_json::Value::Bool(false)
            ) && value != serde_json::json!(0)
                && value != serde_json::json!("");
            if truthy {
                return Ok(value);
            }
            if started.elapsed() > timeout {
                return Err(format!("timed out after {timeout:?} waiting for: {script}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
