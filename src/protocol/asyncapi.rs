//! `docs/asyncapi.yaml` held to the server's own message types, so it cannot drift:
//!
//! - it lists every client message type the decoder knows (`inbound::TYPES`) and every server
//!   message kind (`outbound::Kind::ALL`), no more, on both channels (`/ws` and Socket.IO);
//! - each server message has exactly the fields its struct serializes, and requires exactly
//!   those the struct always writes (with the envelope's `type` and `timestamp`);
//! - each client message has exactly the fields its decoder reads (with `type`, `id` and
//!   `timestamp`), requires at least those the decoder cannot do without, and each field it
//!   requires is refused when missing; every example decodes.
//!
//! The fields of a type come from its `utoipa::ToSchema` derive (`described`), the same schemas
//! the REST description uses.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::inbound;
use super::outbound::{self, Kind};

/// A type's schema, with the schemas it refers to.
pub(crate) struct Described {
    schema: Value,
    components: Map<String, Value>,
}

pub(crate) fn described<T: ToSchema>() -> Described {
    let mut referred = Vec::new();
    T::schemas(&mut referred);
    let components = referred
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).expect("a schema serializes")))
        .collect();
    Described { schema: serde_json::to_value(T::schema()).expect("a schema serializes"), components }
}

/// An object's fields: every property a schema gives it, and those it requires.
#[derive(Debug, Default, PartialEq)]
struct Fields {
    all: BTreeSet<String>,
    required: BTreeSet<String>,
}

impl Fields {
    fn of(schema: &Value, components: &Map<String, Value>) -> Fields {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.strip_prefix("#/components/schemas/").unwrap_or(reference);
            let target = components.get(name).unwrap_or_else(|| panic!("{reference} is not defined"));
            return Fields::of(target, components);
        }
        let mut fields = Fields::default();
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            fields.all.extend(properties.keys().cloned());
        }
        fields.required.extend(strings(schema.get("required")));
        // A flattened part adds its fields; of alternatives, each adds its fields and only what
        // all of them require is required.
        for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            let part = Fields::of(part, components);
            fields.all.extend(part.all);
            fields.required.extend(part.required);
        }
        for alternatives in ["oneOf", "anyOf"].iter().filter_map(|key| schema.get(*key)?.as_array()) {
            let mut common: Option<BTreeSet<String>> = None;
            for alternative in alternatives {
                let alternative = Fields::of(alternative, components);
                fields.all.extend(alternative.all.iter().cloned());
                common = Some(match common {
                    None => alternative.required,
                    Some(common) => common.intersection(&alternative.required).cloned().collect(),
                });
            }
            fields.required.extend(common.unwrap_or_default());
        }
        fields
    }

    fn with(mut self, required: &[&str], optional: &[&str]) -> Fields {
        self.all.extend(required.iter().chain(optional).map(|f| f.to_string()));
        self.required.extend(required.iter().map(|f| f.to_string()));
        self
    }
}

fn strings(list: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    list.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned)
}

struct Document(Value);

impl Document {
    fn load() -> Document {
        let text = include_str!("../../docs/asyncapi.yaml");
        Document(yaml_serde::from_str(text).expect("docs/asyncapi.yaml is YAML"))
    }

    fn components(&self) -> &Map<String, Value> {
        self.0["components"]["schemas"].as_object().expect("components.schemas")
    }

    /// The messages of one direction (`client` or `server`), by wire name.
    fn messages(&self, direction: &str) -> Vec<(String, &Value)> {
        let messages = self.0["components"]["messages"].as_object().expect("components.messages");
        let prefix = format!("{direction}.");
        let mut found = Vec::new();
        for (key, message) in messages {
            if let Some(name) = key.strip_prefix(&prefix) {
                assert_eq!(message["name"], name, "{key}: its name is the wire type");
                found.push((name.to_owned(), message));
            }
        }
        found
    }

    fn payload_fields(&self, message: &Value) -> Fields {
        Fields::of(&message["payload"], self.components())
    }
}

#[test]
fn it_lists_every_message_type_of_the_server_and_no_other() {
    let doc = Document::load();
    assert_eq!(doc.0["asyncapi"].as_str().map(|v| v.starts_with("3.")), Some(true), "AsyncAPI 3");
    let client: BTreeSet<String> = doc.messages("client").into_iter().map(|(name, _)| name).collect();
    let types: BTreeSet<String> = inbound::TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(client, types, "client messages against inbound::TYPES");
    let server: BTreeSet<String> = doc.messages("server").into_iter().map(|(name, _)| name).collect();
    let kinds: BTreeSet<String> = Kind::ALL.iter().map(|k| k.name().to_owned()).collect();
    assert_eq!(server, kinds, "server messages against outbound::Kind::ALL");
    let all = doc.0["components"]["messages"].as_object().expect("messages");
    assert_eq!(all.len(), client.len() + server.len(), "every message is client.* or server.*");

    // Both channels carry every message; the operations split them by direction.
    for channel in ["ws", "socketio"] {
        let listed = doc.0["channels"][channel]["messages"].as_object().expect("channel messages");
        let keys: BTreeSet<&String> = listed.keys().collect();
        assert_eq!(keys, all.keys().collect(), "channel {channel}");
        for (key, reference) in listed {
            assert_eq!(reference["$ref"], format!("#/components/messages/{key}"), "{channel}: {key}");
        }
    }
    let operations = doc.0["operations"].as_object().expect("operations");
    for (channel, direction, action) in [
        ("ws", "client", "receive"),
        ("ws", "server", "send"),
        ("socketio", "client", "receive"),
        ("socketio", "server", "send"),
    ] {
        let operation = operations
            .values()
            .find(|op| op["action"] == action && op["channel"]["$ref"] == format!("#/channels/{channel}"))
            .unwrap_or_else(|| panic!("no {action} operation on {channel}"));
        let listed: BTreeSet<String> = operation["messages"]
            .as_array()
            .expect("operation messages")
            .iter()
            .filter_map(|m| {
                m["$ref"].as_str()?.strip_prefix(&format!("#/channels/{channel}/messages/{direction}."))
            })
            .map(str::to_owned)
            .collect();
        let expected = if direction == "client" { &client } else { &server };
        assert_eq!(&listed, expected, "{action} on {channel}");
    }
}

#[test]
fn each_server_message_has_the_fields_its_type_serializes() {
    let doc = Document::load();
    for (name, message) in doc.messages("server") {
        let kind = Kind::from_name(&name).expect("a server kind");
        let own = outbound::fields_of(kind);
        // The envelope: `type` first, `reply_to` on a direct reply, the server's `timestamp`
        // (an error's `reply_to` is part of its body).
        let expected = Fields::of(&own.schema, &own.components).with(&["type", "timestamp"], &["reply_to"]);
        assert_eq!(doc.payload_fields(message), expected, "server message {name}");
    }
}

#[test]
fn each_client_message_has_the_fields_its_decoder_reads_and_its_examples_decode() {
    let doc = Document::load();
    for (name, message) in doc.messages("client") {
        let own = inbound::fields_of(&name).unwrap_or_else(|| panic!("{name}: no decoder fields"));
        let decoder = Fields::of(&own.schema, &own.components).with(&["type"], &["id", "timestamp"]);
        let described = doc.payload_fields(message);
        assert_eq!(described.all, decoder.all, "client message {name}: its fields");
        let missing: Vec<_> = decoder.required.difference(&described.required).collect();
        assert!(missing.is_empty(), "client message {name}: {missing:?} are required by the decoder");

        let examples = message["examples"].as_array().filter(|e| !e.is_empty());
        let examples = examples.unwrap_or_else(|| panic!("client message {name}: no example"));
        for example in examples {
            let payload = example["payload"].as_object().expect("an example payload is an object");
            assert_eq!(
                payload.get("type").and_then(Value::as_str),
                Some(name.as_str()),
                "{name}: example type"
            );
            let decoded = inbound::decode_message(&Value::Object(payload.clone()));
            assert!(
                decoded.is_ok(),
                "client message {name}: example {payload:?} does not decode: {decoded:?}"
            );
            // Each field the description requires is refused when missing, naming the field.
            for field in &described.required {
                let mut without = payload.clone();
                assert!(without.remove(field).is_some(), "{name}: the example leaves out required {field}");
                let refused = inbound::decode_message(&Value::Object(without))
                    .expect_err(&format!("{name} without {field} is accepted"));
                let named =
                    refused.error.details.as_ref().and_then(|d| d["field"].as_str().map(str::to_owned));
                assert_eq!(
                    named.as_deref(),
                    Some(field.as_str()),
                    "{name} without {field}: {:?}",
                    refused.error
                );
            }
        }
    }
}

#[test]
fn the_check_sees_a_missing_field_and_a_wrong_requirement() {
    // A description that drops a field, or requires an optional one, does not match.
    let own = outbound::fields_of(Kind::Ack);
    let actual = Fields::of(&own.schema, &own.components);
    assert_eq!(actual.all, BTreeSet::from(["seq".to_owned()]));
    let dropped: Value = serde_json::json!({"type": "object", "properties": {}, "required": []});
    assert_ne!(Fields::of(&dropped, &Map::new()), actual);
    let own = outbound::fields_of(Kind::ConnectionStatus);
    let actual = Fields::of(&own.schema, &own.components);
    assert!(actual.all.contains("latency_ms") && !actual.required.contains("latency_ms"), "{actual:?}");
}
