//! The same saga as a Step Functions workflow (`benchmarks/saga.asl.json`), for pricing beside
//! the fan-out: the states an execution goes through on each path, counted from the definition.

use serde_json::Value;

use crate::system::BenchResult;

/// What one execution does on one path through the workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Execution {
    /// States entered (Step Functions Standard bills each as a state transition).
    pub transitions: u64,
    /// Lambda functions invoked, in order.
    pub lambda_tasks: Vec<String>,
    /// DynamoDB service integrations called.
    pub dynamodb_tasks: u64,
}

/// Which way every `Choice` goes: its first rule (the order is confirmed) or its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    FirstRule,
    Default,
}

/// The workflow's definition, as kept in `benchmarks/`.
pub fn definition() -> BenchResult<Value> {
    let path = local_runtime::emulator::project_root().join("benchmarks/saga.asl.json");
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// One execution of `definition` along `path`.
pub fn execute(definition: &Value, path: Path) -> BenchResult<Execution> {
    let mut execution = Execution::default();
    run(definition, path, &mut execution)?;
    Ok(execution)
}

/// Runs the state machine (or a Parallel branch) `machine` from its `StartAt` to its end.
fn run(machine: &Value, path: Path, execution: &mut Execution) -> BenchResult<()> {
    let states = &machine["States"];
    let mut name = machine["StartAt"]
        .as_str()
        .ok_or("a state machine without StartAt")?
        .to_owned();
    // A definition with a loop on this path would never end: bound the walk.
    for _ in 0..1_000 {
        let state = &states[name.as_str()];
        execution.transitions += 1;
        match state["Type"].as_str() {
            Some("Task") => {
                let resource = state["Resource"].as_str().unwrap_or_default();
                if resource.contains(":lambda:") {
                    let function = state["Parameters"]["FunctionName"]
                        .as_str()
                        .unwrap_or(resource);
                    execution.lambda_tasks.push(function.to_owned());
                } else if resource.contains(":dynamodb:") {
                    execution.dynamodb_tasks += 1;
                }
            }
            Some("Parallel") => {
                for branch in state["Branches"].as_array().into_iter().flatten() {
                    run(branch, path, execution)?;
                }
            }
            Some("Choice") => {
                let next = match path {
                    Path::FirstRule => &state["Choices"][0]["Next"],
                    Path::Default => &state["Default"],
                };
                name = next
                    .as_str()
                    .ok_or("a Choice without its next state")?
                    .to_owned();
                continue;
            }
            Some("Succeed" | "Fail") => return Ok(()),
            Some("Pass" | "Wait") => {}
            other => return Err(format!("state {name}: unknown type {other:?}").into()),
        }
        if state["End"] == true {
            return Ok(());
        }
        name = state["Next"]
            .as_str()
            .ok_or(format!("state {name} has neither Next nor End"))?
            .to_owned();
    }
    Err("the workflow does not end on this path".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmed_and_the_cancelled_paths_are_counted_from_the_definition() {
        let definition = definition().unwrap();
        let confirmed = execute(&definition, Path::FirstRule).unwrap();
        // Parallel, its two tasks, the choice, the confirmation and three tasks after it.
        assert_eq!(confirmed.transitions, 8);
        assert_eq!(
            confirmed.lambda_tasks,
            [
                "inventory",
                "payment",
                "payment",
                "shipping",
                "notification"
            ]
        );
        assert_eq!(confirmed.dynamodb_tasks, 1);
        let cancelled = execute(&definition, Path::Default).unwrap();
        assert_eq!(cancelled.transitions, 9);
        assert_eq!(cancelled.lambda_tasks.len(), 5);
    }

    #[test]
    fn a_state_without_a_way_on_is_an_error() {
        let broken = serde_json::json!({
            "StartAt": "A",
            "States": { "A": { "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke" } }
        });
        assert!(execute(&broken, Path::FirstRule).is_err());
    }
}
