//! The decoder, event by event: what each accepts, and the field each refusal names.

use super::*;
use crate::domain::records::Operation;
use crate::domain::station::OrderRef;

fn rejected(text: &str) -> Rejected {
    decode(text).expect_err("should be rejected")
}

fn field(r: &Rejected) -> Option<String> {
    r.error.details.as_ref().and_then(|d| d["field"].as_str().map(str::to_owned))
}

#[test]
fn a_device_update_decodes_into_a_station_patch() {
    let m = decode(r#"{"type":"device_update","id":"c-1","deviceId":"pc1","data":{"isRunning":true,"elapsedSeconds":3600,"mode":"single","customerCount":2,"notes":"VIP customer"},"timestamp":"2026-02-03T02:25:33+03:00"}"#)
        .expect("decode");
    assert_eq!(m.id.as_deref(), Some("c-1"));
    let ClientEvent::Station(StationCommand::Update { station_id, patch }) = m.event else {
        panic!("not an update: {:?}", m.event)
    };
    assert_eq!(station_id, "pc1");
    assert_eq!(patch.elapsed_seconds, Some(3600));
    assert_eq!(patch.notes.as_deref(), Some("VIP customer"));
}

#[test]
fn not_json_and_not_an_object_are_invalid_payload() {
    assert_eq!(rejected("{nope").error.code, ErrorCode::InvalidPayload);
    assert_eq!(rejected("[1,2]").error.code, ErrorCode::InvalidPayload);
    assert_eq!(rejected("\"ping\"").error.code, ErrorCode::InvalidPayload);
}

#[test]
fn a_missing_type_names_the_field_and_keeps_the_id() {
    let r = rejected(r#"{"id":"x1","deviceId":"pc1"}"#);
    assert_eq!(r.error.code, ErrorCode::InvalidPayload);
    assert_eq!(field(&r).as_deref(), Some("type"));
    assert_eq!(r.reply_to.as_deref(), Some("x1"));
}

#[test]
fn an_unknown_type_is_unknown_event() {
    let r = rejected(r#"{"type":"teleport","id":"x2"}"#);
    assert_eq!(r.error.code, ErrorCode::UnknownEvent);
    assert_eq!(r.reply_to.as_deref(), Some("x2"));
}

#[test]
fn a_missing_required_field_is_named() {
    let r = rejected(r#"{"type":"device_update","data":{}}"#);
    assert_eq!(field(&r).as_deref(), Some("deviceId"));
}

#[test]
fn a_float_price_is_refused_naming_orders() {
    let r = rejected(
        r#"{"type":"order_placed","deviceId":"pc1","orders":[{"name":"tea","price":10.5,"quantity":1}]}"#,
    );
    assert_eq!(field(&r).as_deref(), Some("orders"));
    let path = r.error.details.as_ref().and_then(|d| d["path"].as_str().map(str::to_owned));
    assert_eq!(path.as_deref(), Some("orders[0].price"));
}

#[test]
fn negative_counts_and_zero_quantities_are_refused() {
    let r = rejected(r#"{"type":"device_update","deviceId":"pc1","data":{"elapsedSeconds":-1}}"#);
    assert_eq!(field(&r).as_deref(), Some("data"));
    let r = rejected(
        r#"{"type":"order_placed","deviceId":"pc1","orders":[{"name":"tea","price":1,"quantity":0}]}"#,
    );
    assert_eq!(field(&r).as_deref(), Some("orders"));
}

#[test]
fn a_long_device_id_is_refused() {
    let long = "p".repeat(MAX_ID_CHARS + 1);
    let r = rejected(&format!(r#"{{"type":"device_reset","deviceId":"{long}"}}"#));
    assert_eq!(field(&r).as_deref(), Some("deviceId"));
    let ok = "ب".repeat(MAX_ID_CHARS);
    assert!(decode(&format!(r#"{{"type":"device_reset","deviceId":"{ok}"}}"#)).is_ok());
}

#[test]
fn an_id_that_is_not_a_short_string_is_refused_without_reply_to() {
    let r = rejected(r#"{"type":"ping","id":17}"#);
    assert_eq!(field(&r).as_deref(), Some("id"));
    assert_eq!(r.reply_to, None);
}

#[test]
fn nesting_past_the_limit_names_the_field() {
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    let r = rejected(&format!(r#"{{"type":"ping","extra":{deep}}}"#));
    assert_eq!(field(&r).as_deref(), Some("extra"));
    let fits = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
    assert!(decode(&format!(r#"{{"type":"ping","extra":{fits}}}"#)).is_ok());
}

#[test]
fn an_overlong_string_names_the_field() {
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    let r = rejected(&format!(r#"{{"type":"device_update","deviceId":"pc1","data":{{"notes":"{long}"}}}}"#));
    assert_eq!(field(&r).as_deref(), Some("data"));
}

#[test]
fn too_many_orders_are_refused() {
    let one = r#"{"name":"t","price":1,"quantity":1}"#;
    let many = vec![one; MAX_ITEMS + 1].join(",");
    let r = rejected(&format!(r#"{{"type":"order_placed","deviceId":"pc1","orders":[{many}]}}"#));
    assert_eq!(field(&r).as_deref(), Some("orders"));
}

#[test]
fn a_bad_client_timestamp_is_refused() {
    let r = rejected(r#"{"type":"ping","timestamp":"03/02/2026"}"#);
    assert_eq!(field(&r).as_deref(), Some("timestamp"));
    assert!(decode(r#"{"type":"ping","timestamp":"2026-02-03T02:25:33+03:00"}"#).is_ok());
}

#[test]
fn an_order_is_named_by_index_or_id() {
    let m = decode(r#"{"type":"order_deleted","deviceId":"pc1","orderId":"o-1"}"#).expect("decode");
    assert_eq!(
        m.event,
        ClientEvent::Station(StationCommand::DeleteOrder {
            station_id: "pc1".into(),
            target: OrderRef::Id("o-1".into())
        })
    );
    let r = rejected(r#"{"type":"order_deleted","deviceId":"pc1"}"#);
    assert_eq!(field(&r).as_deref(), Some("orderIndex"));
}

#[test]
fn a_transfer_onto_itself_is_refused() {
    let r = rejected(r#"{"type":"device_transfer","fromDeviceId":"pc1","toDeviceId":"pc1"}"#);
    assert_eq!(field(&r).as_deref(), Some("toDeviceId"));
}

#[test]
fn connect_reads_resume_fields() {
    let m =
        decode(r#"{"type":"connect","clientId":"cashier-1","last_seq":42,"epoch":"e1","token":"ignored"}"#)
            .expect("decode");
    assert_eq!(
        m.event,
        ClientEvent::Connect(Connect {
            client_id: Some("cashier-1".into()),
            last_seq: Some(42),
            epoch: Some("e1".into())
        })
    );
    assert_eq!(field(&rejected(r#"{"type":"connect","last_seq":-1}"#)).as_deref(), Some("last_seq"));
}

#[test]
fn device_online_reads_both_seeds_fields() {
    let m = decode(r#"{"type":"device_online","device_id":"till-1","device_name":"Till 1","device_type":"manager","priority":80,"capabilities":["sync"],"last_seq":3,"epoch":"e"}"#)
        .expect("decode");
    let ClientEvent::DeviceOnline(d) = m.event else { panic!("{:?}", m.event) };
    assert_eq!((d.device_id.as_str(), d.priority, d.last_seq), ("till-1", Some(80), Some(3)));
    assert_eq!(d.capabilities, Some(vec!["sync".to_owned()]));
    assert!(!d.legacy);
    let m = decode(r#"{"type":"register_device","device_id":"t2","role":"master"}"#).expect("decode");
    let ClientEvent::DeviceOnline(d) = m.event else { panic!("{:?}", m.event) };
    assert!(d.legacy);
    assert_eq!(d.role, Some(Role::Master));
}

#[test]
fn a_priority_outside_0_to_100_is_refused() {
    for bad in ["101", "-1", "50.5", "\"high\""] {
        let r = rejected(&format!(r#"{{"type":"device_online","device_id":"t","priority":{bad}}}"#));
        assert_eq!(field(&r).as_deref(), Some("priority"), "{bad}");
    }
    let r = rejected(r#"{"type":"device_online","device_id":"t","role":"boss"}"#);
    assert_eq!(field(&r).as_deref(), Some("role"));
}

#[test]
fn device_shutdown_takes_either_reason_field() {
    let m = decode(r#"{"type":"device_shutdown","device_id":"t","shutdown_reason":"closing time","pending_operations":2}"#)
        .expect("decode");
    assert_eq!(
        m.event,
        ClientEvent::DeviceShutdown {
            device_id: "t".into(),
            reason: Some("closing time".into()),
            pending_operations: Some(2)
        }
    );
}

#[test]
fn role_change_ack_may_decline() {
    let m = decode(r#"{"type":"role_change_ack","device_id":"t","new_role":"master","status":"error"}"#)
        .expect("decode");
    assert!(matches!(m.event, ClientEvent::RoleChangeAck { accepted: false, .. }));
    let r = rejected(r#"{"type":"role_change_ack","device_id":"t","new_role":"master","status":"maybe"}"#);
    assert_eq!(field(&r).as_deref(), Some("status"));
}

#[test]
fn heartbeat_fields_are_type_checked() {
    assert!(decode(r#"{"type":"heartbeat","device_id":"t","status":"healthy","uptime_seconds":5,"memory_usage":0.5,"cpu_usage":12}"#).is_ok());
    let r = rejected(r#"{"type":"heartbeat","device_id":"t","cpu_usage":"hot"}"#);
    assert_eq!(field(&r).as_deref(), Some("cpu_usage"));
}

fn sync_event(text: &str) -> SyncEvent {
    match decode(text).expect("decode").event {
        ClientEvent::Sync(event) => event,
        other => panic!("not a sync event: {other:?}"),
    }
}

#[test]
fn data_update_takes_both_seeds_field_names() {
    let a = sync_event(
        r#"{"type":"data_update","device_id":"t","table_name":"products","record_id":42,"new_data":{"n":1},"operation":"create","base_version":2,"timestamp":"2026-02-03T02:25:33+03:00"}"#,
    );
    let b = sync_event(
        r#"{"type":"data_update","device_id":"t","table":"products","record_id":"42","data":{"n":1},"operation":"insert","base_version":2,"timestamp":"2026-02-03T02:25:33+03:00"}"#,
    );
    assert_eq!(a, b);
    let SyncEvent::DataUpdate(u) = a else { panic!() };
    assert_eq!((u.table.as_str(), u.record_id.as_str(), u.operation), ("products", "42", Operation::Insert));
    assert!(u.at.is_some());
}

#[test]
fn data_update_defaults_to_update_and_a_delete_needs_no_data() {
    let SyncEvent::DataUpdate(u) =
        sync_event(r#"{"type":"data_update","device_id":"t","table":"p","record_id":"x","data":{}}"#)
    else {
        panic!()
    };
    assert_eq!(u.operation, Operation::Update);
    let SyncEvent::DataUpdate(d) = sync_event(
        r#"{"type":"data_update","device_id":"t","table":"p","record_id":"x","operation":"delete"}"#,
    ) else {
        panic!()
    };
    assert_eq!((d.operation, d.data), (Operation::Delete, None));
}

#[test]
fn malformed_data_updates_name_their_field() {
    let cases = [
        (r#"{"type":"data_update","device_id":"t","record_id":1,"data":{}}"#, "table_name"),
        (
            r#"{"type":"data_update","device_id":"t","table":"a","table_name":"b","record_id":1,"data":{}}"#,
            "table",
        ),
        (r#"{"type":"data_update","device_id":"t","table":"p","data":{}}"#, "record_id"),
        (r#"{"type":"data_update","device_id":"t","table":"p","record_id":1.5,"data":{}}"#, "record_id"),
        (r#"{"type":"data_update","device_id":"t","table":"p","record_id":1}"#, "data"),
        (r#"{"type":"data_update","device_id":"t","table":"p","record_id":1,"new_data":[1]}"#, "new_data"),
        (
            r#"{"type":"data_update","device_id":"t","table":"p","record_id":1,"data":{},"operation":"merge"}"#,
            "operation",
        ),
        (
            r#"{"type":"data_update","device_id":"t","table":"p","record_id":1,"data":{},"base_version":-1}"#,
            "base_version",
        ),
        (r#"{"type":"data_update","device_id":"t","table":"stations","record_id":"pc1","data":{}}"#, "table"),
        (r#"{"type":"data_update","table":"p","record_id":1,"data":{}}"#, "device_id"),
    ];
    for (text, expected) in cases {
        assert_eq!(field(&rejected(text)).as_deref(), Some(expected), "{text}");
    }
}

#[test]
fn data_request_kinds_and_their_fields() {
    let SyncEvent::DataRequest(r) = sync_event(
        r#"{"type":"data_request","device_id":"t","table":"p","record_ids":[1,"b"],"request_type":"batch"}"#,
    ) else {
        panic!()
    };
    assert_eq!(r.kind, RequestKind::Batch(vec!["1".into(), "b".into()]));
    let SyncEvent::DataRequest(r) =
        sync_event(r#"{"type":"data_request","device_id":"t","table_name":"p","request_type":"latest"}"#)
    else {
        panic!()
    };
    assert_eq!(r.kind, RequestKind::Latest(50));
    assert_eq!(
        field(&rejected(r#"{"type":"data_request","device_id":"t","table":"p"}"#)).as_deref(),
        Some("record_id")
    );
    assert_eq!(
        field(&rejected(r#"{"type":"data_request","device_id":"t","table":"p","request_type":"batch"}"#))
            .as_deref(),
        Some("record_ids")
    );
    assert_eq!(
        field(&rejected(
            r#"{"type":"data_request","device_id":"t","table":"p","request_type":"all","record_id":1}"#
        ))
        .as_deref(),
        Some("request_type")
    );
    assert_eq!(
        field(&rejected(
            r#"{"type":"data_request","device_id":"t","table":"p","request_type":"latest","limit":0}"#
        ))
        .as_deref(),
        Some("limit")
    );
}

#[test]
fn sync_request_defaults_and_bounds() {
    let SyncEvent::SyncRequest(r) = sync_event(r#"{"type":"sync_request","device_id":"t"}"#) else {
        panic!()
    };
    assert_eq!((r.sync_type, r.limit, r.last_seq), (SyncType::Full, 1000, None));
    assert_eq!(
        field(&rejected(r#"{"type":"sync_request","device_id":"t","sync_type":"partial"}"#)).as_deref(),
        Some("sync_type")
    );
    assert_eq!(
        field(&rejected(r#"{"type":"sync_request","device_id":"t","limit":10001}"#)).as_deref(),
        Some("limit")
    );
    assert_eq!(
        field(&rejected(r#"{"type":"sync_request","device_id":"t","last_seq":"5"}"#)).as_deref(),
        Some("last_seq")
    );
    assert_eq!(
        field(&rejected(r#"{"type":"sync_request","device_id":"t","last_sync_timestamp":"monday"}"#))
            .as_deref(),
        Some("last_sync_timestamp")
    );
    assert_eq!(
        field(&rejected(r#"{"type":"sync_request","device_id":"t","requested_tables":"p"}"#)).as_deref(),
        Some("requested_tables")
    );
}

#[test]
fn legacy_and_status_events_decode() {
    assert!(matches!(
        sync_event(r#"{"type":"critical_event","device_id":"t","event_type":"sale","payload":{"total":5}}"#),
        SyncEvent::CriticalEvent { .. }
    ));
    assert_eq!(
        field(&rejected(r#"{"type":"critical_event","device_id":"t","event_type":"sale","payload":5}"#))
            .as_deref(),
        Some("payload")
    );
    assert_eq!(
        sync_event(r#"{"type":"acknowledge","device_id":"t","seq":9}"#),
        SyncEvent::Acknowledge { device_id: "t".into(), seq: 9 }
    );
    assert!(matches!(
        sync_event(r#"{"type":"queue_status_request","device_id":"t"}"#),
        SyncEvent::QueueStatus { .. }
    ));
    assert_eq!(
        field(&rejected(r#"{"type":"sync_error","device_id":"t","error_type":"network"}"#)).as_deref(),
        Some("error_message")
    );
    assert_eq!(
        field(&rejected(
            r#"{"type":"sync_error","device_id":"t","error_type":"n","error_message":"m","retry_count":-1}"#
        ))
        .as_deref(),
        Some("retry_count")
    );
    let SyncEvent::SyncConflict(c) = sync_event(
        r#"{"type":"sync_conflict","device_id":"t","table":"p","record_id":1,"local_version":2,"server_version":3,"local_data":{"a":1},"server_data":{"a":0}}"#,
    ) else {
        panic!()
    };
    assert_eq!((c.base_version, c.data.is_some()), (Some(3), true));
}

#[test]
fn peek_id_reads_only_a_valid_id() {
    assert_eq!(peek_id(r#"{"type":"x","id":"a"}"#).as_deref(), Some("a"));
    assert_eq!(peek_id(r#"{"id":5}"#), None);
    assert_eq!(peek_id("garbage"), None);
}

#[test]
fn the_list_of_client_types_is_exactly_what_the_decoder_knows() {
    assert!(TYPES.windows(2).all(|w| w[0] < w[1]), "sorted, for the lookup");
    for kind in TYPES {
        let refused = decode(&format!(r#"{{"type":"{kind}"}}"#)).err();
        assert!(
            refused.is_none_or(|r| r.error.code != ErrorCode::UnknownEvent),
            "{kind} is listed but the decoder does not know it"
        );
        assert_eq!(type_index(kind).map(|i| TYPES[i]), Some(*kind));
    }
    assert_eq!(type_index("no_such_type"), None);
    assert_eq!(rejected(r#"{"type":"no_such_type"}"#).error.code, ErrorCode::UnknownEvent);
}
