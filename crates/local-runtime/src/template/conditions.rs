//! The template's `Conditions`, evaluated from the parameters' values, and `Fn::If` chosen by
//! them: what decides which resources and properties exist in this deployment.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::TemplateError;

/// Every condition of the template, evaluated.
pub fn evaluate(
    conditions: &Value,
    parameters: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, bool>, TemplateError> {
    let mut evaluator = Evaluator {
        definitions: conditions.as_object().cloned().unwrap_or_default(),
        parameters,
        values: BTreeMap::new(),
    };
    let names: Vec<String> = evaluator.definitions.keys().cloned().collect();
    for name in names {
        evaluator.condition(&name, 0)?;
    }
    Ok(evaluator.values)
}

fn error(condition: &str, problem: impl std::fmt::Display) -> TemplateError {
    TemplateError::Resource {
        resource: format!("condition {condition}"),
        problem: problem.to_string(),
    }
}

struct Evaluator<'a> {
    definitions: Map<String, Value>,
    parameters: &'a BTreeMap<String, String>,
    values: BTreeMap<String, bool>,
}

impl Evaluator<'_> {
    fn condition(&mut self, name: &str, depth: usize) -> Result<bool, TemplateError> {
        if let Some(value) = self.values.get(name) {
            return Ok(*value);
        }
        if depth > 32 {
            return Err(error(name, "conditions refer to each other in a cycle"));
        }
        let definition = self
            .definitions
            .get(name)
            .cloned()
            .ok_or_else(|| error(name, "no such condition"))?;
        let value = self.boolean(name, &definition, depth + 1)?;
        self.values.insert(name.to_owned(), value);
        Ok(value)
    }

    fn boolean(&mut self, name: &str, value: &Value, depth: usize) -> Result<bool, TemplateError> {
        let (function, argument) =
            single(value).ok_or_else(|| error(name, "not a condition function"))?;
        let list = argument.as_array().map(Vec::as_slice).unwrap_or_default();
        match function {
            "Fn::Equals" => match list {
                [a, b] => Ok(self.scalar(name, a)? == self.scalar(name, b)?),
                _ => Err(error(name, "Fn::Equals takes two values")),
            },
            "Fn::Not" => match list {
                [inner] => Ok(!self.boolean(name, inner, depth)?),
                _ => Err(error(name, "Fn::Not takes one condition")),
            },
            "Fn::And" | "Fn::Or" => {
                let mut results = Vec::new();
                for inner in list {
                    results.push(self.boolean(name, inner, depth)?);
                }
                Ok(if function == "Fn::And" {
                    results.iter().all(|b| *b)
                } else {
                    results.iter().any(|b| *b)
                })
            }
            "Condition" => {
                let other = argument
                    .as_str()
                    .ok_or_else(|| error(name, "Condition names no condition"))?;
                self.condition(other, depth)
            }
            other => Err(error(
                name,
                format!("{other} cannot be evaluated in a condition"),
            )),
        }
    }

    fn scalar(&self, name: &str, value: &Value) -> Result<String, TemplateError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => match single(value) {
                Some(("Ref", Value::String(parameter))) => {
                    self.parameters.get(parameter).cloned().ok_or_else(|| {
                        error(name, format!("Ref {parameter}: no such parameter value"))
                    })
                }
                // A list parameter joined (`!Join ["", !Ref Origins]`: empty when the list is).
                Some(("Fn::Join", Value::Array(arguments))) => match arguments.as_slice() {
                    [Value::String(separator), list] => {
                        let text = self.scalar(name, list)?;
                        Ok(text.split(',').collect::<Vec<_>>().join(separator))
                    }
                    _ => Err(error(name, "Fn::Join takes a separator and a list")),
                },
                _ => Err(error(name, format!("cannot compare {value}"))),
            },
        }
    }
}

/// `(key, value)` of a one-key object: the shape of every intrinsic function.
pub(super) fn single(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// `value` with every `Fn::If` replaced by its chosen branch; a branch of `Ref AWS::NoValue`
/// removes the property or list element.
pub fn choose(
    value: &Value,
    conditions: &BTreeMap<String, bool>,
) -> Result<Option<Value>, TemplateError> {
    if let Some(("Fn::If", Value::Array(arguments))) = single(value) {
        let [condition, then, otherwise] = arguments.as_slice() else {
            return Err(error("Fn::If", "takes a condition and two values"));
        };
        let name = condition.as_str().unwrap_or_default();
        let chosen = match conditions.get(name) {
            Some(true) => then,
            Some(false) => otherwise,
            None => return Err(error(name, "no such condition")),
        };
        return choose(chosen, conditions);
    }
    if let Some(("Ref", Value::String(name))) = single(value) {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
    }
    Ok(Some(match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, inner) in map {
                if let Some(kept) = choose(inner, conditions)? {
                    out.insert(key.clone(), kept);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(choose(item, conditions)?);
            }
            Value::Array(out)
        }
        other => other.clone(),
    }))
}
