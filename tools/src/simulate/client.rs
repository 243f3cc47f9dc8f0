//! A simulated client, behaving as the shop's app does.
//!
//! A **till** (a device) registers with `device_online`, sends a heartbeat every two seconds,
//! writes sales (`data_update`) at its rate, confirms a `role_change` that makes it master, and
//! when its connection drops it keeps selling into an offline queue, then comes back with
//! `last_seq` and flushes the queue through `POST /sync/push` (document 003). A **cashier** (a
//! session that is no device) changes its station (`device_update`). Both record every change
//! delivered to them and every write of theirs acknowledged, in their `ClientLog`.
//!
//! A write whose connection drops before its answer is *in doubt*: it may have been applied.
//! As the app does, the client sends it again, with the same `id`, on its next session (once
//! registered); the server applies a write at most once per writer and id, and answers the
//! repeat as it answered the first. What is still in doubt when the run ends is counted apart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

use super::session::{Resume, Session};
use super::{Kind, Shared};
use crate::loadgen::wire::Transport;

/// What the scenario tells a client.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    /// Lose the connection without a word and stay away this long.
    Drop(Duration),
    /// Stop writing (the end of the run).
    StopWriting,
    /// Close and end.
    End,
}

const HEARTBEAT: Duration = Duration::from_secs(2);
const RECONNECT: Duration = Duration::from_millis(250);

/// Runs client `index` until `Order::End`.
pub async fn run(shared: Arc<Shared>, index: usize, mut orders: mpsc::UnboundedReceiver<Order>) {
    let mut client = Client::new(shared, index);
    loop {
        let session = match client.connect().await {
            Ok(session) => session,
            Err(err) => {
                if !client.failing {
                    client.failing = true;
                    client.note(format!("cannot connect ({err}); retrying"));
                }
                if client.pause(RECONNECT, &mut orders).await {
                    return;
                }
                continue;
            }
        };
        match client.serve(session, &mut orders).await {
            Ending::End => {
                client.went_offline();
                return;
            }
            Ending::Away(away) => {
                client.went_offline();
                if client.away(away, &mut orders).await {
                    return;
                }
            }
            Ending::Lost(err) => {
                client.went_offline();
                client.note(format!("connection lost ({err})"));
                if client.away(RECONNECT, &mut orders).await {
                    return;
                }
            }
        }
        client.state().log.lock().map(|mut log| log.reconnects += 1).ok();
    }
}

enum Ending {
    End,
    Away(Duration),
    Lost(String),
}

struct Client {
    shared: Arc<Shared>,
    index: usize,
    /// The next write's number.
    next: u64,
    /// Writes sent on the current session and not answered yet, by id: their type and body.
    in_flight: HashMap<String, (&'static str, Value)>,
    /// Writes whose session ended before their answer: sent again on the next session.
    in_doubt: Vec<(String, &'static str, Value)>,
    /// A till's sales made while offline, for `/sync/push`.
    queue: Vec<Value>,
    writing: bool,
    write_every: Duration,
    /// Connecting has failed since the last session (said once).
    failing: bool,
    /// The last `seq` it confirmed.
    confirmed: u64,
    /// The session is replaying what the client missed (until `connected`): those deliveries
    /// are catch-up, not live, and their latency is not a delivery's.
    catching_up: bool,
}

impl Client {
    fn new(shared: Arc<Shared>, index: usize) -> Self {
        let rate = shared.rate.max(0.01);
        Self {
            shared,
            index,
            next: 0,
            in_flight: HashMap::new(),
            in_doubt: Vec::new(),
            queue: Vec::new(),
            writing: true,
            write_every: Duration::from_secs_f64(1.0 / rate),
            failing: false,
            confirmed: 0,
            catching_up: false,
        }
    }

    fn state(&self) -> &super::ClientState {
        &self.shared.clients[self.index]
    }

    fn note(&self, what: String) {
        self.shared.event(format!("{}: {what}", self.state().id));
    }

    async fn connect(&mut self) -> Result<Session, String> {
        let shared = Arc::clone(&self.shared);
        let state = &shared.clients[self.index];
        let resume = {
            let log = state.log.lock().map_err(|_| "poisoned")?;
            Resume {
                client_id: state.id.clone(),
                last_seq: log.start.map(|_| log.last),
                epoch: self.shared.epoch.lock().ok().and_then(|e| e.clone()),
            }
        };
        let mut session =
            Session::open(state.transport, &self.shared.server, self.shared.token.as_deref(), &resume)
                .await?;
        self.failing = false;
        self.catching_up = resume.last_seq.is_some();
        if state.kind == Kind::Till {
            let online = json!({"id": format!("{}-online", state.id), "device_id": state.id,
                "device_name": state.name, "device_type": "till", "priority": state.priority,
                "last_seq": resume.last_seq, "epoch": resume.epoch});
            session.send("device_online", online).await?;
        }
        self.flush_queue().await;
        Ok(session)
    }

    /// Serves a session until it ends, an order takes it away, or the run ends.
    async fn serve(&mut self, mut session: Session, orders: &mut mpsc::UnboundedReceiver<Order>) -> Ending {
        self.set_online(true);
        let mut heartbeat = every(HEARTBEAT);
        let mut writes = every(self.write_every);
        loop {
            tokio::select! {
                message = session.recv() => match message {
                    Ok(message) => {
                        if let Err(err) = self.on_message(&mut session, message).await {
                            return Ending::Lost(err);
                        }
                    }
                    Err(err) => return Ending::Lost(err),
                },
                _ = heartbeat.tick(), if self.state().kind == Kind::Till => {
                    if let Err(err) = self.beat(&mut session).await {
                        return Ending::Lost(err);
                    }
                }
                _ = writes.tick(), if self.writing => {
                    if let Err(err) = self.write(&mut session).await {
                        return Ending::Lost(err);
                    }
                }
                order = orders.recv() => match order {
                    Some(Order::Drop(away)) => {
                        self.note(format!("drops off for {:.1} s", away.as_secs_f64()));
                        // Dropped without a close frame, as a till whose network goes.
                        drop(session);
                        return Ending::Away(away);
                    }
                    Some(Order::StopWriting) => self.writing = false,
                    Some(Order::End) | None => return Ending::End,
                },
            }
        }
    }

    /// A heartbeat, and the confirmation of every change applied so far (`acknowledge`, which
    /// moves the device's confirmed position: its sync lag on the admin page).
    async fn beat(&mut self, session: &mut Session) -> Result<(), String> {
        let id = self.state().id.clone();
        session.send("heartbeat", json!({"device_id": id, "status": "ok"})).await?;
        let last = self.state().log.lock().map(|log| log.last).unwrap_or(0);
        if last > self.confirmed {
            self.confirmed = last;
            let confirm = json!({"id": format!("{id}-confirm-{last}"), "device_id": id, "seq": last});
            session.send("acknowledge", confirm).await?;
        }
        Ok(())
    }

    /// Stays offline for `away` (a till keeps selling into its queue); `true` if the run ended.
    async fn away(&mut self, away: Duration, orders: &mut mpsc::UnboundedReceiver<Order>) -> bool {
        let until = tokio::time::Instant::now() + away;
        let mut writes = every(self.write_every);
        writes.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return false,
                _ = writes.tick(), if self.writing && self.state().kind == Kind::Till => self.queue_sale(),
                order = orders.recv() => match order {
                    Some(Order::StopWriting) => self.writing = false,
                    Some(Order::Drop(_)) => {}
                    Some(Order::End) | None => return true,
                },
            }
        }
    }

    /// Waits `for_` unless the run ends (`true`).
    async fn pause(&mut self, for_: Duration, orders: &mut mpsc::UnboundedReceiver<Order>) -> bool {
        self.away(for_, orders).await
    }

    fn set_online(&self, online: bool) {
        if let Ok(mut status) = self.state().status.lock() {
            status.online = online;
            if !online {
                status.role = None;
            }
        }
    }

    /// The session ended: its writes not answered are in doubt, to be sent again.
    fn went_offline(&mut self) {
        self.set_online(false);
        let doubtful = self.in_flight.drain().map(|(id, (kind, body))| (id, kind, body));
        self.in_doubt.extend(doubtful);
        self.in_doubt.sort_by(|a, b| a.0.cmp(&b.0));
        self.count_in_doubt();
    }

    fn count_in_doubt(&self) {
        if let Ok(mut status) = self.state().status.lock() {
            status.in_doubt = self.in_doubt.len() as u64;
        }
    }

    /// Sends the writes in doubt again, as they were (same id, same body), once the session
    /// speaks for the client.
    async fn send_in_doubt(&mut self, session: &mut Session) -> Result<(), String> {
        if !self.in_doubt.is_empty() {
            self.note(format!("sends {} writes in doubt again", self.in_doubt.len()));
        }
        for (id, kind, body) in std::mem::take(&mut self.in_doubt) {
            self.in_flight.insert(id, (kind, body.clone()));
            session.send(kind, body).await?;
        }
        self.count_in_doubt();
        Ok(())
    }

    /// The next write's id, its tag and its body.
    fn next_write(&mut self) -> (String, Value) {
        self.next += 1;
        let state = self.state();
        let tag = format!("{}-{}", state.id, self.next);
        self.shared.sent_at.lock().map(|mut sent| sent.insert(tag.clone(), Instant::now())).ok();
        let body = match state.kind {
            Kind::Till => json!({"id": tag, "device_id": state.id, "table_name": "sales", "record_id": tag,
                "operation": "insert", "data": {"tag": tag, "till": state.id, "amount": 100 + self.next % 900}}),
            Kind::Cashier => json!({"id": tag, "deviceId": state.station,
                "data": {"customerCount": self.next % 12, "notes": tag}}),
        };
        (tag, body)
    }

    async fn write(&mut self, session: &mut Session) -> Result<(), String> {
        let (tag, body) = self.next_write();
        let kind = if self.state().kind == Kind::Till { "data_update" } else { "device_update" };
        self.in_flight.insert(tag, (kind, body.clone()));
        session.send(kind, body).await
    }

    fn queue_sale(&mut self) {
        let (tag, mut body) = self.next_write();
        // Its latency would be the time offline: it is not measured.
        self.shared.sent_at.lock().map(|mut sent| sent.remove(&tag)).ok();
        body["type"] = json!("data_update");
        self.queue.push(body);
        if let Ok(mut status) = self.state().status.lock() {
            status.queued = self.queue.len() as u64;
        }
    }

    /// Flushes the offline queue through `/sync/push`, where each event is applied at most once.
    async fn flush_queue(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.queue);
        let events_again = events.clone();
        let count = events.len();
        let shared = Arc::clone(&self.shared);
        let state = &shared.clients[self.index];
        let mut request = shared
            .http
            .post(format!("{}/sync/push", shared.server))
            .json(&json!({"device_id": state.id, "events": events}));
        if let Some(token) = &shared.token {
            request = request.bearer_auth(token);
        }
        let answer = match request.send().await {
            Ok(response) => response.json::<Value>().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(answer) => {
                let mut acknowledged = 0;
                for result in answer["results"].as_array().into_iter().flatten() {
                    if let (Some(tag), Some(seq)) = (result["id"].as_str(), result["seq"].as_u64()) {
                        self.acknowledged(tag, seq, false);
                        acknowledged += 1;
                    }
                }
                self.note(format!("pushed its offline queue: {acknowledged} of {count} applied"));
            }
            Err(err) => {
                // Not known to be applied: pushed again next time (each event at most once).
                self.note(format!("could not push its offline queue ({err})"));
                self.queue.extend(events_again);
            }
        }
        if let Ok(mut status) = self.state().status.lock() {
            status.queued = self.queue.len() as u64;
        }
    }

    /// A write (by tag) was acknowledged as change `seq` (`in_feed`: over its session).
    fn acknowledged(&mut self, tag: &str, seq: u64, in_feed: bool) {
        let shared = &self.shared;
        shared.head.fetch_max(seq, Ordering::Relaxed);
        if let Some(sent) = shared.sent_at.lock().ok().and_then(|sent| sent.get(tag).copied())
            && let Ok(mut latencies) = shared.ack_latency.lock()
        {
            latencies.push(sent.elapsed());
        }
        shared.writes.lock().map(|mut w| w.became(tag, seq)).ok();
        self.state().log.lock().map(|mut log| log.acknowledged(seq, in_feed)).ok();
        if let Ok(mut status) = self.state().status.lock() {
            status.acknowledged += 1;
        }
    }

    async fn on_message(&mut self, session: &mut Session, message: Value) -> Result<(), String> {
        self.shared.frames.fetch_add(1, Ordering::Relaxed);
        let kind = message["type"].as_str().unwrap_or_default();
        let reply_to = message["reply_to"].as_str();
        // The answer to one of this session's writes.
        if let Some(id) = reply_to
            && self.in_flight.contains_key(id)
        {
            let id = id.to_owned();
            self.in_flight.remove(&id);
            match message["seq"].as_u64() {
                Some(seq) if kind != "error" => self.acknowledged(&id, seq, true),
                _ => {
                    let code = message["code"].as_str().unwrap_or(kind).to_owned();
                    self.note(format!("write {id} refused: {code}"));
                    self.state().status.lock().map(|mut s| s.refused += 1).ok();
                }
            }
            return Ok(());
        }
        let me = self.state().id.clone();
        match kind {
            "connected" => {
                self.catching_up = false;
                // A cashier speaks for its `clientId` from its `connect` on.
                if self.state().kind == Kind::Cashier {
                    self.send_in_doubt(session).await?;
                }
                if let Some(head) = message["last_seq"].as_u64() {
                    self.state().log.lock().map(|mut log| log.started_at(head)).ok();
                    self.shared.head.fetch_max(head, Ordering::Relaxed);
                }
                if let (Some(epoch), Ok(mut known)) = (message["epoch"].as_str(), self.shared.epoch.lock()) {
                    known.get_or_insert_with(|| epoch.to_owned());
                }
            }
            "resync_required" => {
                self.note(format!("told to resync ({})", message["reason"]));
                self.state().log.lock().map(|mut log| log.resyncs += 1).ok();
            }
            "device_online_ack" => {
                // A till speaks for its device once registered.
                self.send_in_doubt(session).await?;
                let role = message["role"].as_str().map(str::to_owned);
                if let (Some(term), Some(master)) =
                    (message["term"].as_u64(), message["current_master"].as_str())
                {
                    self.shared.told_master(term, master);
                }
                self.state().status.lock().map(|mut s| s.role = role).ok();
            }
            "role_change" if message["device_id"] == me.as_str() => {
                let role = message["new_role"].as_str().unwrap_or_default().to_owned();
                if role == "master" {
                    let ack = json!({"device_id": me, "new_role": "master", "status": "success",
                        "election_id": message["election_id"]});
                    session.send("role_change_ack", ack).await?;
                }
                self.state().status.lock().map(|mut s| s.role = Some(role)).ok();
            }
            "master_elected" => {
                if let (Some(term), Some(master)) =
                    (message["term"].as_u64(), message["new_master_id"].as_str())
                {
                    self.shared.told_master(term, master);
                    if master == me {
                        self.state().status.lock().map(|mut s| s.role = Some("master".into())).ok();
                    } else if let Ok(mut s) = self.state().status.lock()
                        && s.role.as_deref() == Some("master")
                    {
                        s.role = Some("client".into());
                    }
                }
            }
            // Replies carry a `seq` too; a change delivered is any other message with one.
            "ack" | "data_update_ack" | "acknowledged" => {}
            _ if reply_to.is_none() => {
                if let Some(seq) = message["seq"].as_u64() {
                    self.delivered(seq, &message);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A change delivered to this client.
    fn delivered(&mut self, seq: u64, message: &Value) {
        let shared = &self.shared;
        shared.head.fetch_max(seq, Ordering::Relaxed);
        self.state().log.lock().map(|mut log| log.delivered(seq)).ok();
        let tag = message["data"]["tag"].as_str().or_else(|| message["data"]["notes"].as_str());
        if let Some(tag) = tag.filter(|t| !t.is_empty()) {
            shared.writes.lock().map(|mut w| w.became(tag, seq)).ok();
            if !self.catching_up
                && let Some(sent) = shared.sent_at.lock().ok().and_then(|sent| sent.get(tag).copied())
                && let Ok(mut latencies) = shared.delivery_latency.lock()
            {
                latencies.push(sent.elapsed());
            }
        }
    }
}

fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// The transport of client `index` when the run mixes them: every other one on Socket.IO.
pub fn transport_of(choice: super::TransportChoice, index: usize) -> Transport {
    match choice {
        super::TransportChoice::Ws => Transport::Ws,
        super::TransportChoice::Socketio => Transport::Socketio,
        super::TransportChoice::Mixed if index % 2 == 1 => Transport::Socketio,
        super::TransportChoice::Mixed => Transport::Ws,
    }
}
