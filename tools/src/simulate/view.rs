//! What the simulator shows while it runs: a live terminal view (`ratatui`: the clients with
//! role, online and lag, the events, messages per second and p99 latency), or, with
//! `--no-tui` (or when the output is not a terminal), JSON lines: each event as it happens and
//! the figures every second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, List, ListItem, Paragraph, Row, Table};
use serde::Serialize;
use serde_json::json;

use super::{Kind, Shared};

/// How the run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// The live terminal view.
    Terminal,
    /// JSON lines on standard output.
    Lines,
}

/// The running view.
pub struct View {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl View {
    /// Stops the view (and gives the terminal back).
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn start(shared: Arc<Shared>) -> View {
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let thread = std::thread::spawn(move || match shared.display {
        Display::Terminal => terminal(&shared, &stop),
        Display::Lines => lines(&shared, &stop),
    });
    View { done, thread: Some(thread) }
}

/// The figures of the last second.
#[derive(Serialize)]
struct Figures {
    messages_per_second: f64,
    writes_per_second: f64,
    p99_ack_ms: f64,
    p99_delivery_ms: f64,
    head_seq: u64,
    master: Option<String>,
    term: Option<u64>,
    online: usize,
    largest_lag: u64,
}

/// Counts the figures are made from, between two looks.
struct Rates {
    at: Instant,
    frames: u64,
    acknowledged: u64,
}

impl Rates {
    fn new(shared: &Shared) -> Self {
        Self { at: Instant::now(), frames: frames(shared), acknowledged: acknowledged(shared) }
    }

    fn figures(&mut self, shared: &Shared) -> Figures {
        let seconds = self.at.elapsed().as_secs_f64().max(0.001);
        let (frames_now, acknowledged_now) = (frames(shared), acknowledged(shared));
        let per_second = |now: u64, then: u64| (now.saturating_sub(then) as f64 / seconds).round();
        let master = shared.master.lock().ok().and_then(|m| m.clone());
        let p99 = |l: &std::sync::Mutex<crate::loadgen::stats::Latencies>| {
            l.lock().map(|mut l| l.percentile_ms(99.0)).unwrap_or(0.0)
        };
        let figures = Figures {
            messages_per_second: per_second(frames_now, self.frames),
            writes_per_second: per_second(acknowledged_now, self.acknowledged),
            p99_ack_ms: p99(&shared.ack_latency),
            p99_delivery_ms: p99(&shared.delivery_latency),
            head_seq: shared.head.load(Ordering::Relaxed),
            term: master.as_ref().map(|(term, _)| *term),
            master: master.map(|(_, id)| id),
            online: shared.clients.iter().filter(|c| c.status.lock().is_ok_and(|s| s.online)).count(),
            largest_lag: shared.largest_lag(),
        };
        *self = Rates { at: Instant::now(), frames: frames_now, acknowledged: acknowledged_now };
        figures
    }
}

fn frames(shared: &Shared) -> u64 {
    shared.frames.load(Ordering::Relaxed)
}

fn acknowledged(shared: &Shared) -> u64 {
    shared.clients.iter().map(|c| c.status.lock().map(|s| s.acknowledged).unwrap_or(0)).sum()
}

fn lines(shared: &Shared, done: &AtomicBool) {
    let mut rates = Rates::new(shared);
    let mut next = Instant::now() + Duration::from_secs(1);
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next {
            next += Duration::from_secs(1);
            let at = (shared.started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
            println!("{}", json!({"t": at, "figures": rates.figures(shared)}));
        }
    }
}

fn terminal(shared: &Shared, done: &AtomicBool) {
    let mut screen = ratatui::init();
    let mut rates = Rates::new(shared);
    let mut figures = rates.figures(shared);
    let mut refreshed = Instant::now();
    while !done.load(Ordering::Relaxed) {
        if refreshed.elapsed() >= Duration::from_secs(1) {
            figures = rates.figures(shared);
            refreshed = Instant::now();
        }
        let drawn = screen.draw(|frame| draw(frame, shared, &figures));
        if drawn.is_err() {
            break;
        }
        if event::poll(Duration::from_millis(200)).unwrap_or(false)
            && let Ok(Event::Key(key)) = event::read()
            && (key.code == KeyCode::Char('q')
                || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)))
        {
            shared.quit.store(true, Ordering::Relaxed);
        }
    }
    ratatui::restore();
}

fn draw(frame: &mut ratatui::Frame<'_>, shared: &Shared, figures: &Figures) {
    let [top, fleet, events] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(5), Constraint::Length(12)])
            .areas(frame.area());
    let elapsed = shared.started.elapsed().as_secs_f64();
    let title = format!(
        " device-sync simulate · {} · {:.0} of {:.0} s · seed {} · q ends early ",
        shared.scenario.name(),
        elapsed,
        shared.seconds,
        shared.seed
    );
    let master = match (&figures.master, figures.term) {
        (Some(master), Some(term)) if shared.has_master() => format!("master {master} (term {term})").bold(),
        (Some(master), Some(term)) => format!("no master: {master} (term {term}) is gone").bold().red(),
        _ => "no master yet".bold(),
    };
    let summary = vec![
        Line::from(vec![
            master,
            format!(
                "   {} of {} online   head seq {}",
                figures.online,
                shared.clients.len(),
                figures.head_seq
            )
            .into(),
        ]),
        Line::from(format!(
            "{} messages/s   {} writes/s   p99 write→ack {:.1} ms   p99 write→delivery {:.1} ms   largest lag {}",
            figures.messages_per_second,
            figures.writes_per_second,
            figures.p99_ack_ms,
            figures.p99_delivery_ms,
            figures.largest_lag
        )),
    ];
    frame.render_widget(Paragraph::new(summary).block(Block::bordered().title(title)), top);

    let head = shared.head.load(Ordering::Relaxed);
    let rows = shared.clients.iter().map(|c| {
        let status = c.status.lock().map(|s| s.clone()).unwrap_or_default();
        let lag = c.log.lock().map(|log| head.saturating_sub(log.last)).unwrap_or(0);
        let role = match c.kind {
            Kind::Till => status.role.clone().unwrap_or_else(|| "–".into()),
            Kind::Cashier => format!("cashier ({})", c.station.as_deref().unwrap_or("-")),
        };
        let style = if !status.online {
            Style::new().fg(Color::DarkGray)
        } else if status.role.as_deref() == Some("master") {
            Style::new().fg(Color::Green).bold()
        } else {
            Style::new()
        };
        Row::new(vec![
            c.id.clone(),
            c.transport.name().to_owned(),
            role,
            if status.online { "online".into() } else { "offline".into() },
            lag.to_string(),
            status.acknowledged.to_string(),
            status.queued.to_string(),
            status.in_doubt.to_string(),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(24),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
    ];
    let header = Row::new(["client", "transport", "role", "", "lag", "acked", "queued", "in doubt"]).bold();
    frame.render_widget(
        Table::new(rows, widths).header(header).block(Block::bordered().title(" Fleet ")),
        fleet,
    );

    let shown = usize::from(events.height.saturating_sub(2));
    let items: Vec<ListItem<'_>> = shared
        .events
        .lock()
        .map(|events| {
            let skip = events.len().saturating_sub(shown);
            events.iter().skip(skip).map(|(at, what)| ListItem::new(format!("{at:6.1} s  {what}"))).collect()
        })
        .unwrap_or_default();
    frame.render_widget(List::new(items).block(Block::bordered().title(" Events ")), events);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::super::{Options, Scenario, TransportChoice, fleet};
    use super::*;

    #[test]
    fn the_view_shows_the_master_the_clients_and_the_events() {
        let options = Options {
            scenario: Scenario::MasterCrash,
            server: "http://127.0.0.1:1".into(),
            spawn: false,
            token: None,
            admin_token: None,
            tills: 2,
            cashiers: 1,
            seconds: 30.0,
            rate: None,
            seed: Some(5),
            transport: TransportChoice::Mixed,
            no_tui: false,
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
        let clients = fleet(2, 1, TransportChoice::Mixed, &mut rng);
        let shared = Shared::new("http://127.0.0.1:1".into(), &options, 5, 4.0, clients);
        shared.clients[1]
            .status
            .lock()
            .map(|mut s| {
                *s = super::super::Status {
                    online: true,
                    role: Some("master".into()),
                    acknowledged: 7,
                    ..Default::default()
                }
            })
            .ok();
        shared.told_master(3, "till-2");
        shared.event("till-1 (the master) crashes".into());
        let figures = Rates::new(&shared).figures(&shared);
        let mut screen = Terminal::new(TestBackend::new(120, 24)).expect("a test terminal");
        screen.draw(|frame| draw(frame, &shared, &figures)).expect("drawn");
        let buffer = screen.backend().buffer();
        let rows: Vec<String> =
            (0..24).map(|y| (0..120).map(|x| buffer[(x, y)].symbol()).collect::<String>()).collect();
        let text = rows.join("\n");
        for expected in
            ["master-crash", "master till-2 (term 3)", "till-1", "socketio", "cashier-1", "crashes", "online"]
        {
            assert!(text.contains(expected), "{expected} is not on the screen:\n{text}");
        }
    }
}
