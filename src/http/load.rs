//! The two ways of sending load. Closed loop: N users, each sends its next request when its
//! last one is answered. Open loop: requests leave on an arrival schedule whatever is in
//! flight, up to a cap. Both stop by themselves: after their request count, at their
//! deadline, or at Ctrl-C (requests in flight finish, each bounded by --timeout).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::client::{self, RequestRecord, Target};
use crate::progress::Progress;
use crate::workload::prompts::Prompt;

/// Records in flight to the collector; senders wait when it falls behind, so memory stays
/// bounded.
const CHANNEL: usize = 4096;

/// What both loops need: where to send, what, how many, and when to stop.
pub struct Plan<'a> {
    pub target: &'a Arc<Target>,
    pub prompts: &'a Arc<Vec<Prompt>>,
    /// Requests to send (ignored with a duration).
    pub requests: u64,
    /// Send until this much time has passed instead.
    pub duration: Option<Duration>,
    pub interrupt: &'a Arc<AtomicBool>,
    /// The progress bar's label.
    pub label: &'a str,
}

impl Plan<'_> {
    fn limit(&self) -> u64 {
        if self.duration.is_some() {
            u64::MAX
        } else {
            self.requests
        }
    }

    /// A bar of the requests, or a spinner for a duration.
    fn progress(&self) -> Progress {
        match self.duration {
            Some(_) => Progress::new(0, self.label),
            None => Progress::new(self.requests, self.label),
        }
    }
}

/// Hand every record to `on_record` as it arrives, until every sender is gone.
async fn collect(
    mut rx: mpsc::Receiver<RequestRecord>,
    bar: Progress,
    mut on_record: impl FnMut(RequestRecord),
) {
    while let Some(record) = rx.recv().await {
        on_record(record);
        bar.inc(1);
    }
    bar.finish();
}

/// Send one request now and hand its record on; false when nobody collects any more.
async fn send_now(
    target: &Target,
    prompts: &[Prompt],
    prompt_index: usize,
    start: Instant,
    tx: &mpsc::Sender<RequestRecord>,
) -> bool {
    let sent_at = start.elapsed();
    let outcome = client::send(target, &prompts[prompt_index]).await;
    let record = RequestRecord {
        scheduled_at: sent_at,
        sent_at,
        prompt_index,
        outcome,
    };
    tx.send(record).await.is_ok()
}

/// `concurrency` users sending the plan's requests.
pub async fn closed_loop(plan: &Plan<'_>, concurrency: u32, on_record: impl FnMut(RequestRecord)) {
    let requests = plan.limit();
    let bar = plan.progress();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let start = Instant::now();
    let deadline = plan.duration.map(|d| start + d);
    let next = Arc::new(AtomicU64::new(0));
    for _ in 0..concurrency.max(1) {
        let (tx, target, prompts, next, interrupt) = (
            tx.clone(),
            plan.target.clone(),
            plan.prompts.clone(),
            next.clone(),
            plan.interrupt.clone(),
        );
        tokio::spawn(async move {
            loop {
                if interrupt.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= requests {
                    break;
                }
                let prompt_index = (i % prompts.len() as u64) as usize;
                if !send_now(&target, &prompts, prompt_index, start, &tx).await {
                    break;
                }
            }
        });
    }
    drop(tx);
    collect(rx, bar, on_record).await;
}

/// Multi-turn: conversations (ranges of the plan's prompts) and the pause between turns.
pub struct Conversations {
    pub turns: Arc<Vec<std::ops::Range<usize>>>,
    pub think_time: Duration,
}

/// `users` users, each holding one conversation at a time: every turn carries the
/// conversation so far (the user's turns and the server's answers) and waits for its answer,
/// then the think time, before the next. A failed turn ends its conversation. The plan's
/// request count counts turns.
pub async fn conversation_loop(
    plan: &Plan<'_>,
    users: u32,
    conversations: &Conversations,
    on_record: impl FnMut(RequestRecord),
) {
    let requests = plan.limit();
    let bar = plan.progress();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let start = Instant::now();
    let deadline = plan.duration.map(|d| start + d);
    let (next_conversation, sent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for _ in 0..users.max(1) {
        let (tx, target, prompts, interrupt) = (
            tx.clone(),
            plan.target.clone(),
            plan.prompts.clone(),
            plan.interrupt.clone(),
        );
        let (next_conversation, sent, turns) = (
            next_conversation.clone(),
            sent.clone(),
            conversations.turns.clone(),
        );
        let think_time = conversations.think_time;
        let stop = move || {
            interrupt.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d)
        };
        tokio::spawn(async move {
            'users: loop {
                let c = next_conversation.fetch_add(1, Ordering::SeqCst) as usize;
                let mut history: Vec<(String, String)> = Vec::new();
                for (turn, prompt_index) in turns[c % turns.len()].clone().enumerate() {
                    if turn > 0 && !think_time.is_zero() {
                        let wake = Instant::now() + think_time;
                        tokio::time::sleep_until(deadline.map_or(wake, |d| wake.min(d))).await;
                    }
                    if stop() || sent.fetch_add(1, Ordering::SeqCst) >= requests {
                        break 'users;
                    }
                    let prompt = Prompt {
                        history: history.clone(),
                        ..prompts[prompt_index].clone()
                    };
                    let sent_at = start.elapsed();
                    let outcome = client::send(&target, &prompt).await;
                    let answer = outcome
                        .as_ref()
                        .ok()
                        .map(|s| s.text_for_counting.clone().unwrap_or_default());
                    let record = RequestRecord {
                        scheduled_at: sent_at,
                        sent_at,
                        prompt_index,
                        outcome,
                    };
                    if tx.send(record).await.is_err() {
                        break 'users;
                    }
                    match answer {
                        Some(answer) => history.push((prompt.text, answer)),
                        None => break, // the conversation cannot go on without its answer
                    }
                }
            }
        });
    }
    drop(tx);
    collect(rx, bar, on_record).await;
}

/// A closed loop whose number of users follows `pattern` (its rate read as users): user k
/// sends while the pattern asks for more than k users, so users join as a ramp rises and
/// leave (after their request in flight) as it falls.
pub async fn user_pattern_loop(
    plan: &Plan<'_>,
    pattern: &crate::workload::pattern::Pattern,
    on_record: impl FnMut(RequestRecord),
) {
    let requests = plan.limit();
    let bar = plan.progress();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let start = Instant::now();
    let end = start + pattern.duration();
    let next = Arc::new(AtomicU64::new(0));
    let users = pattern.max_rate().ceil().max(1.0) as u64;
    for k in 0..users {
        let (tx, target, prompts, next, interrupt, pattern) = (
            tx.clone(),
            plan.target.clone(),
            plan.prompts.clone(),
            next.clone(),
            plan.interrupt.clone(),
            pattern.clone(),
        );
        tokio::spawn(async move {
            loop {
                let now = Instant::now();
                if interrupt.load(Ordering::SeqCst) || now >= end {
                    break;
                }
                let wanted = pattern.rate_at((now - start).as_secs_f64()).round() as u64;
                if k >= wanted {
                    // Not this user's turn yet (or any more): look again shortly.
                    tokio::time::sleep(Duration::from_millis(10).min(end - now)).await;
                    continue;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= requests {
                    break;
                }
                let prompt_index = (i % prompts.len() as u64) as usize;
                if !send_now(&target, &prompts, prompt_index, start, &tx).await {
                    break;
                }
            }
        });
    }
    drop(tx);
    collect(rx, bar, on_record).await;
}

pub struct OpenLoopOutcome {
    pub sent: u64,
    /// First send to last send.
    pub send_span: Duration,
    /// Arrivals that found --max-concurrency requests in flight and waited for one to end.
    pub delayed_by_cap: u64,
}

/// The plan's requests sent when `arrivals` says (offsets from the start; the schedule may
/// end before the plan does), at most `max_concurrency` in flight.
pub async fn open_loop(
    plan: &Plan<'_>,
    mut arrivals: Box<dyn Iterator<Item = Duration> + Send>,
    max_concurrency: u32,
    on_record: impl FnMut(RequestRecord),
) -> OpenLoopOutcome {
    let requests = plan.limit();
    let bar = plan.progress();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let start = Instant::now();
    let deadline = plan.duration.map(|d| start + d);
    let slots = Arc::new(Semaphore::new(max_concurrency.max(1) as usize));
    let (target, prompts, interrupt) = (
        plan.target.clone(),
        plan.prompts.clone(),
        plan.interrupt.clone(),
    );
    let scheduler = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut delayed = 0u64;
        let mut last_send = Duration::ZERO;
        while sent < requests {
            let Some(offset) = arrivals.next() else {
                break;
            };
            let due = start + offset;
            if deadline.is_some_and(|d| due >= d) {
                break;
            }
            tokio::time::sleep_until(due).await;
            if interrupt.load(Ordering::SeqCst) {
                break;
            }
            let permit = match slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    delayed += 1;
                    match slots.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    }
                }
            };
            let prompt_index = (sent % prompts.len() as u64) as usize;
            let (tx, target, prompts) = (tx.clone(), target.clone(), prompts.clone());
            let sent_at = start.elapsed();
            let scheduled_at = due - start;
            last_send = sent_at;
            tokio::spawn(async move {
                let outcome = client::send(&target, &prompts[prompt_index]).await;
                drop(permit);
                let _ = tx
                    .send(RequestRecord {
                        scheduled_at,
                        sent_at,
                        prompt_index,
                        outcome,
                    })
                    .await;
            });
            sent += 1;
        }
        (sent, last_send, delayed)
    });
    collect(rx, bar, on_record).await;
    let (sent, send_span, delayed_by_cap) = scheduler.await.unwrap_or_default();
    OpenLoopOutcome {
        sent,
        send_span,
        delayed_by_cap,
    }
}
