//! The operator CLI's commands and flags (`cargo run -- --help`): what `src/main.rs` parses, and
//! what the documentation's commands are checked against (`tests/docs.rs`).

use clap::{Args, Parser, Subcommand};
use local_runtime::sdk::Endpoints;

/// The emulator port `cargo lambda watch`'s functions expect (Cargo.toml's
/// `[workspace.metadata.lambda.env]`).
pub const LAMBDA_WATCH_EMULATOR_PORT: u16 = 4580;

/// Runs the order system locally on an AWS emulator, and operates it (locally or on AWS).
#[derive(Parser)]
#[command(version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Bring everything up, push sample orders through, print what each service did, shut down.
    Demo {
        #[arg(long, value_enum, default_value_t = Ordering::Standard)]
        ordering: Ordering,
    },
    /// Bring everything up and serve the HTTP API until Ctrl-C.
    Up {
        /// Port of the local HTTP API.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port of the AWS emulator (DynamoDB on the next one): where the functions that
        /// `cargo lambda watch` runs find it (`[workspace.metadata.lambda.env]` in Cargo.toml).
        #[arg(long, default_value_t = LAMBDA_WATCH_EMULATOR_PORT)]
        emulator_port: u16,
        #[arg(long, value_enum, default_value_t = Ordering::Standard)]
        ordering: Ordering,
        /// An origin whose browser pages may call the API (the template's `CorsAllowedOrigins`),
        /// e.g. http://localhost:5173; repeat for more. None by default.
        #[arg(long = "allow-origin", value_name = "ORIGIN")]
        allow_origins: Vec<String>,
    },
    /// Write a PNG of the live view during a burst with payment stopped (headless Chromium).
    Picture {
        /// Where to write it.
        #[arg(long, default_value = "docs/live-view.png")]
        out: std::path::PathBuf,
        /// Orders in the burst.
        #[arg(long, default_value_t = 24)]
        orders: usize,
    },
    /// Install the pinned emulator into .local/venv.
    Setup,
    /// Print template.yaml as CloudFormation reads it once AWS::LanguageExtensions ran (the
    /// consumers' loop expanded), as JSON: what the SAM translator and the scanners read.
    Template,
    /// Check the end state of every order against the system's promises.
    Audit(Target),
    /// Print an ID token of a customer of the system's user pool, for `Authorization: Bearer`.
    /// A new customer is signed up with a random password (on AWS it is printed on stderr, once).
    /// On a local emulator an existing customer gets a new random password each time, so this
    /// works every time; on AWS an existing customer's password is never reset: give --password.
    Token {
        /// The customer's e-mail address (their user name).
        email: String,
        /// The password of an existing customer.
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Inspect and operate a consumer's dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Subcommand)]
pub enum DlqAction {
    /// What is in the consumer's dead-letter queue.
    List(DlqTarget),
    /// Move the consumer's dead letters back to its queue.
    Redrive(DlqTarget),
    /// Delete the consumer's dead letters.
    Purge {
        #[command(flatten)]
        target: DlqTarget,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub struct DlqTarget {
    /// The consumer: a function name (payment) or logical id (PaymentFunction).
    pub consumer: String,
    #[command(flatten)]
    pub target: Target,
}

/// Where the system runs.
#[derive(Args)]
pub struct Target {
    /// AWS endpoint of every service (default: AWS_ENDPOINT_URL and the per-service
    /// AWS_ENDPOINT_URL_<SERVICE>, or AWS itself).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Prefix of the resource names (`up` uses orderflow-; a stack its NamePrefix).
    #[arg(long, default_value = "orderflow-")]
    pub prefix: String,
    #[arg(long, value_enum, default_value_t = Ordering::Standard)]
    pub ordering: Ordering,
}

impl Target {
    /// Where the AWS APIs are: `--endpoint`, else the environment's `AWS_ENDPOINT_URL*`; `None`
    /// for AWS itself.
    pub fn endpoints(&self) -> Option<Endpoints> {
        match &self.endpoint {
            Some(url) => Some(Endpoints::single(url)),
            None => Endpoints::from_environment(),
        }
    }
}

/// The template's `Ordering` parameter: how events travel (standard or FIFO topic and queues).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Ordering {
    Standard,
    Fifo,
}

impl Ordering {
    /// The template parameters that select it.
    pub fn parameters(self) -> std::collections::BTreeMap<String, String> {
        let value = match self {
            Ordering::Standard => "standard",
            Ordering::Fifo => "fifo",
        };
        std::collections::BTreeMap::from([("Ordering".to_owned(), value.to_owned())])
    }
}
