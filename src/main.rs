//! `orderflow`: run the order system locally, and operate it (`orderflow --help`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use local_runtime::customers::CustomerPool;
use local_runtime::provision::{locate, Deployment};
use local_runtime::runtime::{LocalRuntime, RuntimeOptions};
use local_runtime::sdk::{sdk_config, Endpoints};
use local_runtime::template::Topology;
use orderflow::cli::{Cli, Command, DlqAction, Ordering, Target, LAMBDA_WATCH_EMULATOR_PORT};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `template`: the template with its language extensions applied, as JSON on stdout.
fn print_template() -> Result<(), BoxError> {
    let path = local_runtime::emulator::project_root().join("template.yaml");
    let expanded = local_runtime::template::expanded(&path)?;
    println!("{}", serde_json::to_string_pretty(&expanded)?);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own account of what happened; the services' logs would drown it.
    let quiet = matches!(cli.command, Command::Demo { .. } | Command::Picture { .. });
    lambda_kit::telemetry::init_with_default(if quiet { "warn" } else { "info" });
    let result = match cli.command {
        Command::Demo { ordering } => {
            let mut options = RuntimeOptions {
                http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
                ..RuntimeOptions::default()
            };
            options.provision.parameter_overrides = ordering.parameters();
            orderflow::demo::run(options).await
        }
        Command::Up {
            port,
            emulator_port,
            ordering,
            allow_origins,
        } => up(port, emulator_port, ordering, &allow_origins).await,
        Command::Picture { out, orders } => orderflow::live::picture::take(&out, orders).await,
        Command::Template => print_template(),
        Command::Setup => local_runtime::emulator::install()
            .map(|python| println!("emulator installed: {}", python.display()))
            .map_err(Into::into),
        Command::Audit(target) => audit(&target).await,
        Command::Token {
            email,
            password,
            target,
        } => token(&email, password, &target).await,
        Command::Dlq { action } => dlq(action).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn up(
    port: u16,
    emulator_port: u16,
    ordering: Ordering,
    allow_origins: &[String],
) -> Result<(), BoxError> {
    let mut options = RuntimeOptions {
        emulator_port: Some(emulator_port),
        ..RuntimeOptions::default()
    };
    options.provision.parameter_overrides = ordering.parameters();
    if !allow_origins.is_empty() {
        options
            .provision
            .parameter_overrides
            .insert("CorsAllowedOrigins".to_owned(), allow_origins.join(","));
    }
    options.http_address.set_port(port);
    // The operator commands find these resources by the default prefix, and on FIFO by their
    // `.fifo` names.
    let flags = match ordering {
        Ordering::Standard => "",
        Ordering::Fifo => " --ordering fifo",
    };
    let runtime = LocalRuntime::start(options, orderflow::services::registry()).await?;
    orderflow::shop::seed_catalogue(&runtime).await?;
    let live = orderflow::live::serve(&runtime, orderflow::shop::customers());
    let endpoints = runtime.endpoints();
    let api = runtime.api_url();
    println!("HTTP API: {api}/orders   (AWS emulator: {endpoints})");
    println!("Live view: {live}   (beside the API, same port: open it in a browser)");
    // The operator commands find the emulator as any AWS SDK would: by these variables.
    let variables: Vec<String> = endpoints
        .environment()
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let takes_tokens = runtime.customers().is_some();
    let auth = if takes_tokens {
        " -H \"authorization: Bearer $TOKEN\""
    } else {
        ""
    };
    println!("In another terminal (the README's tour):");
    println!("  export {}", variables.join(" "));
    if takes_tokens {
        println!("  TOKEN=$(cargo run -q -- token ada@example.com{flags})");
    }
    println!(
        "  curl -si -XPOST {api}/orders{auth} -H 'content-type: application/json' -d @events/order-request.json"
    );
    println!("  curl -s {api}/orders{auth}                  # your orders, newest first");
    println!("  curl -s {api}/orders/<orderId>{auth}        # the Location of the 202");
    println!("  curl -s -XPOST {api}/orders/<orderId>/cancel{auth}");
    println!("  cargo run -q -- audit{flags}");
    if emulator_port == LAMBDA_WATCH_EMULATOR_PORT && Endpoints::from_environment().is_none() {
        println!(
            "cargo lambda watch: its functions reach this emulator (Cargo.toml's metadata.lambda.env); \
             cargo lambda invoke <function> --data-file events/lambda/<function>.json"
        );
    }
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    runtime.shutdown().await;
    Ok(())
}

/// The SDK configuration, template and deployment the operator commands work on.
async fn operated(
    target: &Target,
) -> Result<(aws_config::SdkConfig, Topology, Deployment), BoxError> {
    let endpoints = target.endpoint.as_deref().map(Endpoints::single);
    let sdk = sdk_config(endpoints.as_ref()).await;
    let template = local_runtime::emulator::project_root().join("template.yaml");
    let topology = Topology::load(&template, &target.ordering.parameters())?;
    let deployment = locate(&topology, &sdk, &target.prefix).await?;
    Ok((sdk, topology, deployment))
}

async fn token(email: &str, password: Option<String>, target: &Target) -> Result<(), BoxError> {
    let (sdk, _, deployment) = operated(target).await?;
    let customers = CustomerPool::of(&sdk, &deployment).ok_or(
        "no customer user pool found: the stack takes tokens from another issuer, or none (ApiAuthorization), or the --prefix is not its NamePrefix",
    )?;
    // A customer of an emulator on this machine is a test customer: their password is nobody's
    // secret, so an existing one is reset rather than asked for. Never on AWS.
    let local = target
        .endpoints()
        .is_some_and(|endpoints| endpoints.is_local("Cognito Identity Provider"));
    let password = match password {
        Some(password) => password,
        None => {
            let password = local_runtime::customers::new_password();
            if customers.sign_up(email, &password).await? {
                if !local {
                    eprintln!("signed up {email} with password {password}");
                }
            } else if local {
                customers.set_password(email, &password).await?;
            } else {
                return Err(format!(
                    "{email} is a customer already: give their --password (on AWS this command \
                     never resets a customer's password)"
                )
                .into());
            }
            password
        }
    };
    println!("{}", customers.sign_in(email, &password).await?);
    Ok(())
}

async fn audit(target: &Target) -> Result<(), BoxError> {
    let (sdk, _, deployment) = operated(target).await?;
    let expectations = orderflow::audit::Expectations::default();
    let report = orderflow::audit::audit(&sdk, &deployment, &expectations).await?;
    print!("{report}");
    if report.is_clean() {
        Ok(())
    } else {
        Err("the audit found problems".into())
    }
}

async fn dlq(action: DlqAction) -> Result<(), BoxError> {
    let (DlqAction::List(target) | DlqAction::Redrive(target) | DlqAction::Purge { target, .. }) =
        &action;
    let consumer = &target.consumer;
    let (sdk, topology, deployment) = operated(&target.target).await?;
    let (source, dead_letters) =
        orderflow::dlq::queues_of(&topology, consumer).ok_or_else(|| {
            format!("no consumer {consumer:?} with a dead-letter queue in the template")
        })?;
    let dlq_url = deployment.reference(&dead_letters);
    match action {
        DlqAction::List(_) => {
            let listed = orderflow::dlq::list(&sdk, &dlq_url, 100).await?;
            println!("{} message(s) in {dead_letters}", listed.len());
            for letter in listed {
                println!(
                    "{}  event {}  order {}  received {}x  {}",
                    letter.message_id,
                    letter.event_id.as_deref().unwrap_or("-"),
                    letter.order_id.as_deref().unwrap_or("-"),
                    letter.receive_count,
                    letter.excerpt
                );
                match &letter.reason {
                    Some(reason) => println!("    failed permanently: {reason}"),
                    None => println!("    retried until the redrive policy moved it"),
                }
            }
        }
        DlqAction::Redrive(_) => {
            let outcome =
                orderflow::dlq::redrive(&sdk, &deployment, &source, &dead_letters).await?;
            println!("{dead_letters} -> {source}: {outcome:?}");
        }
        DlqAction::Purge { yes, .. } => {
            orderflow::dlq::purge(&sdk, &dlq_url, yes).await?;
            println!("{dead_letters} purged");
        }
    }
    Ok(())
}
