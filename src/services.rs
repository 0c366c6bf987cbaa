//! The one place that names the services: each service's spec (declared in its crate) and the
//! code that builds its function. Adding a service is its crate, its entry in `template.yaml`'s
//! consumer list, and one line here; the tests below say what is missing where.

use lambda_kit::consumer::WithDeadLetters;
use local_runtime::functions::{Built, Registry};

/// Every function of the system.
pub fn registry() -> Registry {
    Registry::new()
        .register(order_api::SPEC, |sdk, env| {
            Ok(Built::http(order_api::OrderApi::from_env(sdk, env)?))
        })
        .consumer(orders::SPEC, orders::Orders::from_env)
        .consumer(inventory::SPEC, inventory::Inventory::from_env)
        .register(payment::SPEC, |sdk, env| {
            let payment = payment::Payment::from_env(sdk, env)?;
            let payment = WithDeadLetters::from_env(payment, sdk, env);
            Ok(Built::queue_with_handle(payment, |p| {
                p.handler().gateway().clone()
            }))
        })
        .consumer(shipping::SPEC, shipping::Shipping::from_env)
        .consumer(notification::SPEC, notification::Notification::from_env)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use local_runtime::template::Topology;

    fn topology() -> Topology {
        let template = local_runtime::emulator::project_root().join("template.yaml");
        Topology::load(&template, &Default::default()).unwrap()
    }

    /// A function in the template without a spec could not run locally; a spec without a
    /// function in the template would never be deployed.
    #[test]
    fn every_template_function_has_a_spec_and_every_spec_a_function() {
        let topology = topology();
        let in_template: BTreeSet<&str> = topology
            .functions
            .iter()
            .map(|f| f.binary.as_str())
            .collect();
        let registered: BTreeSet<&str> = super::registry().binaries().collect();
        let unregistered: Vec<_> = in_template.difference(&registered).collect();
        assert!(
            unregistered.is_empty(),
            "template.yaml has functions {unregistered:?} that src/services.rs does not \
             register: add `.consumer(<crate>::SPEC, <crate>::<Consumer>::from_env)` there"
        );
        let undeployed: Vec<_> = registered.difference(&in_template).collect();
        assert!(
            undeployed.is_empty(),
            "src/services.rs registers {undeployed:?}, which template.yaml does not deploy: add \
             the service to the template's consumer list (Consumers) with that Binary"
        );
    }

    /// What a consumer's code reads is what its queue receives: a type the FilterPolicy lets
    /// through that the code does not read would reach the DLQ; a type the code reads that the
    /// FilterPolicy holds back would never arrive.
    #[test]
    fn each_consumer_s_queue_receives_exactly_the_event_types_its_spec_consumes() {
        let topology = topology();
        let registry = super::registry();
        let mut problems = Vec::new();
        for function in &topology.functions {
            let Some(spec) = registry.spec(&function.binary) else {
                continue;
            };
            let consumed: BTreeSet<String> =
                spec.consumes.iter().map(|t| (*t).to_owned()).collect();
            if function.sqs_sources.is_empty() && spec.is_consumer() {
                problems.push(format!(
                    "{}: its spec consumes {consumed:?} but template.yaml gives it no queue",
                    spec.name
                ));
            }
            for source in &function.sqs_sources {
                let filtered: BTreeSet<String> =
                    topology.event_types_of(&source.queue).into_iter().collect();
                if filtered != consumed {
                    problems.push(format!(
                        "{}: its spec consumes {consumed:?} (consumed_events! in its crate) but \
                         the FilterPolicy of {} in template.yaml lets through {filtered:?}: \
                         make them the same",
                        spec.name, source.queue
                    ));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// A spec's table is one the template gives the function (`<VARIABLE>: !Ref <Table>`).
    #[test]
    fn each_service_s_table_variable_names_a_table_of_the_template() {
        let topology = topology();
        for spec in super::registry().specs() {
            let Some(variable) = spec.table_variable else {
                continue;
            };
            let function = topology
                .functions
                .iter()
                .find(|f| f.binary == spec.name)
                .unwrap_or_else(|| panic!("{} is not in template.yaml", spec.name));
            let table = function
                .environment
                .get(variable)
                .and_then(|v| v.get("Ref"))
                .and_then(|v| v.as_str());
            assert!(
                table.is_some_and(|t| topology.tables.iter().any(|x| x.logical_id == t)),
                "{}'s spec names its table by {variable}, but template.yaml does not set \
                 {variable} to `!Ref` a table in its Environment",
                spec.name
            );
        }
    }

    /// Every event of the catalogue has one producer, and every consumed event a producer.
    #[test]
    fn every_event_type_is_published_by_one_service_and_consumed_ones_are_published() {
        let registry = super::registry();
        for event_type in order_events::EVENT_TYPES {
            let producers: Vec<&str> = registry
                .specs()
                .filter(|s| s.publishes.contains(event_type))
                .map(|s| s.name)
                .collect();
            assert_eq!(
                producers.len(),
                1,
                "{event_type} is published by {producers:?}: exactly one spec's `publishes` must \
                 name it"
            );
        }
        for spec in registry.specs() {
            for event_type in spec.consumes.iter().chain(spec.publishes) {
                assert!(
                    order_events::EVENT_TYPES.contains(event_type),
                    "{} names {event_type}, which is not in the event catalogue",
                    spec.name
                );
            }
        }
    }

    /// The order API dispatches on API Gateway's route key: it serves exactly the routes the
    /// template gives it.
    #[test]
    fn the_order_api_serves_the_routes_the_template_gives_it() {
        let topology = topology();
        let api = topology
            .functions
            .iter()
            .find(|f| f.binary == order_api::SPEC.name)
            .unwrap();
        let routes: BTreeSet<String> = api.http_routes.iter().map(|r| r.key()).collect();
        let served: BTreeSet<String> = order_api::ROUTES.iter().map(|r| r.to_string()).collect();
        assert_eq!(routes, served);
    }
}
