//! `device-sync simulate`: each scenario, briefly, against a server the simulator starts
//! (`--spawn`: the `device-sync` binary built beside this one), judged by its own verdict: nothing lost or
//! duplicated, one master per term, and what the scenario is about actually happened.

use std::process::Command;

use serde_json::Value;

/// Runs a scenario and returns its JSON lines: the events and figures, then the verdict.
fn simulate(scenario: &str, seconds: &str, seed: &str) -> (Vec<Value>, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_device-sync-tools"))
        .args([
            "simulate",
            "--spawn",
            "--scenario",
            scenario,
            "--seconds",
            seconds,
            "--seed",
            seed,
            "--no-tui",
        ])
        .args(["--tills", "5", "--cashiers", "2"])
        // Short timings for the server it starts: a dropped master is replaced half a second
        // after it goes.
        .env("DEVICE_SYNC__ELECTION__RECONNECT_GRACE_S", "0.5")
        .output()
        .expect("the simulator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let verdict = lines.last().map(|last| last["verdict"].clone()).unwrap_or_default();
    assert!(
        output.status.success() && verdict["passed"] == true,
        "{scenario} failed ({:?}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    (lines, verdict)
}

fn events(lines: &[Value]) -> Vec<&str> {
    lines.iter().filter_map(|line| line["event"].as_str()).collect()
}

fn clean(verdict: &Value) {
    assert_eq!(verdict["lost"], 0, "{verdict}");
    assert_eq!(verdict["duplicated"], 0, "{verdict}");
    // A write whose connection dropped before its answer is sent again and answered.
    assert_eq!(verdict["writes_in_doubt"], 0, "{verdict}");
    assert_eq!(verdict["out_of_order"], 0, "{verdict}");
    assert_eq!(verdict["shared_terms"], serde_json::json!([]), "{verdict}");
    assert!(verdict["writes_acknowledged"].as_u64() > Some(20), "{verdict}");
    assert!(verdict["head_seq"].as_u64() >= verdict["writes_acknowledged"].as_u64(), "{verdict}");
}

#[test]
fn lunch_rush_loses_nothing() {
    let (lines, verdict) = simulate("lunch-rush", "4", "11");
    clean(&verdict);
    assert_eq!(verdict["elections"], 1, "{verdict}");
    assert_eq!(verdict["reconnects"], 0, "{verdict}");
    // Figures came every second while it ran.
    assert!(lines.iter().filter(|l| l.get("figures").is_some()).count() >= 3);
}

#[test]
fn a_crashed_master_is_replaced_and_catches_up_when_it_returns() {
    let (lines, verdict) = simulate("master-crash", "6", "3");
    clean(&verdict);
    assert!(verdict["elections"].as_u64() >= Some(2), "a second term: {verdict}");
    assert!(verdict["reconnects"].as_u64() >= Some(1), "{verdict}");
    let events = events(&lines);
    assert!(events.iter().any(|e| e.ends_with("(the master) crashes")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("pushed its offline queue")), "{events:?}");
}

#[test]
fn devices_on_flaky_wifi_drop_and_return_without_losing_anything() {
    let (lines, verdict) = simulate("flaky-wifi", "5", "3");
    clean(&verdict);
    assert!(verdict["reconnects"].as_u64() >= Some(1), "{verdict}");
    assert!(events(&lines).iter().any(|e| e.contains("drops off")), "{lines:?}");
}

#[test]
fn a_server_restarted_under_load_keeps_every_acknowledged_change() {
    let (_, verdict) = simulate("restart", "6", "3");
    clean(&verdict);
    assert_eq!(verdict["server_restarts"], 1, "{verdict}");
    // Every client lost its connection and came back.
    assert!(verdict["reconnects"].as_u64() >= Some(7), "{verdict}");
}
