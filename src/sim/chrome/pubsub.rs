//! A fake Pub/Sub (spec §6.2, §11): topics, subscriptions, publish, pull with ack deadlines,
//! acknowledge, modifyAckDeadline, and redelivery of what was not acknowledged in time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

struct Pending {
    message_id: String,
    data: Vec<u8>,
    /// Not deliverable before (an outstanding delivery's deadline).
    hidden_until: Option<Instant>,
    /// The ack id of the outstanding delivery.
    ack_id: Option<String>,
    deliveries: u32,
}

#[derive(Default)]
struct Subscription {
    ack_deadline: Duration,
    queue: Vec<Pending>,
}

/// Topics and their subscriptions.
#[derive(Default)]
pub struct PubSub {
    topics: HashMap<String, Vec<String>>,
    subscriptions: HashMap<String, Subscription>,
    next_id: u64,
    /// Deadline extensions received (ack ids × calls).
    pub extensions: usize,
}

/// A Pub/Sub refusal: HTTP status and message.
pub type Refusal = (u16, String);

impl PubSub {
    /// `PUT projects/{p}/topics/{t}`.
    pub fn create_topic(&mut self, topic: &str) {
        self.topics.entry(topic.to_owned()).or_default();
    }

    /// `PUT projects/{p}/subscriptions/{s}` with its topic and ack deadline (10–600 s).
    pub fn create_subscription(
        &mut self,
        name: &str,
        topic: &str,
        ack_deadline_secs: u64,
    ) -> Result<(), Refusal> {
        let subscribers = self
            .topics
            .get_mut(topic)
            .ok_or((404, format!("Topic not found: {topic}")))?;
        if !(10..=600).contains(&ack_deadline_secs) {
            return Err((400, "ackDeadlineSeconds must be between 10 and 600".into()));
        }
        if !subscribers.iter().any(|s| s == name) {
            subscribers.push(name.to_owned());
        }
        self.subscriptions.insert(
            name.to_owned(),
            Subscription {
                ack_deadline: Duration::from_secs(ack_deadline_secs),
                queue: Vec::new(),
            },
        );
        Ok(())
    }

    /// `:publish`; `copies` > 1 delivers the same message several times (at-least-once).
    pub fn publish(&mut self, topic: &str, data: &[u8], copies: usize) -> Result<String, Refusal> {
        let subscribers = self
            .topics
            .get(topic)
            .ok_or((404, format!("Topic not found: {topic}")))?
            .clone();
        self.next_id += 1;
        let message_id = self.next_id.to_string();
        for name in subscribers {
            if let Some(sub) = self.subscriptions.get_mut(&name) {
                for _ in 0..copies.max(1) {
                    sub.queue.push(Pending {
                        message_id: message_id.clone(),
                        data: data.to_vec(),
                        hidden_until: None,
                        ack_id: None,
                        deliveries: 0,
                    });
                }
            }
        }
        Ok(message_id)
    }

    fn subscription(&mut self, name: &str) -> Result<&mut Subscription, Refusal> {
        self.subscriptions
            .get_mut(name)
            .ok_or((404, format!("Subscription not found: {name}")))
    }

    /// `:pull`: up to `max` deliverable messages (`ReceivedMessage` JSON), each hidden for the
    /// ack deadline.
    pub fn pull(&mut self, name: &str, max: usize) -> Result<Vec<Value>, Refusal> {
        if max == 0 {
            return Err((400, "maxMessages must be positive".into()));
        }
        self.next_id += 1;
        let batch = self.next_id;
        let sub = self.subscription(name)?;
        let now = Instant::now();
        let deadline = sub.ack_deadline;
        let mut out = Vec::new();
        for (i, pending) in sub.queue.iter_mut().enumerate() {
            if out.len() == max {
                break;
            }
            if pending.hidden_until.is_some_and(|t| t > now) {
                continue;
            }
            let ack_id = format!("ack-{batch}-{i}");
            pending.hidden_until = Some(now + deadline);
            pending.ack_id = Some(ack_id.clone());
            pending.deliveries += 1;
            out.push(json!({
                "ackId": ack_id,
                "message": {
                    "data": base64::engine::general_purpose::STANDARD.encode(&pending.data),
                    "messageId": pending.message_id,
                    "publishTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                },
            }));
        }
        Ok(out)
    }

    /// `:acknowledge`: removes the messages whose current delivery is `ack_ids`.
    pub fn acknowledge(&mut self, name: &str, ack_ids: &[String]) -> Result<(), Refusal> {
        let sub = self.subscription(name)?;
        sub.queue
            .retain(|p| !p.ack_id.as_ref().is_some_and(|id| ack_ids.contains(id)));
        Ok(())
    }

    /// `:modifyAckDeadline`: hides the deliveries `ack_ids` for `seconds` from now (0: at once
    /// deliverable again).
    pub fn modify_ack_deadline(
        &mut self,
        name: &str,
        ack_ids: &[String],
        seconds: u64,
    ) -> Result<(), Refusal> {
        if seconds > 600 {
            return Err((400, "ackDeadlineSeconds must be at most 600".into()));
        }
        self.extensions += ack_ids.len();
        let sub = self.subscription(name)?;
        let until = Instant::now() + Duration::from_secs(seconds);
        for pending in &mut sub.queue {
            if pending
                .ack_id
                .as_ref()
                .is_some_and(|id| ack_ids.contains(id))
            {
                pending.hidden_until = Some(until);
            }
        }
        Ok(())
    }

    /// Messages not yet acknowledged on `name`.
    pub fn unacknowledged(&self, name: &str) -> usize {
        self.subscriptions.get(name).map_or(0, |s| s.queue.len())
    }

    /// Makes every outstanding delivery on `name` deliverable again now (as if its ack
    /// deadline had passed, e.g. after the worker holding it crashed).
    pub fn expire_deadlines(&mut self, name: &str) {
        if let Some(sub) = self.subscriptions.get_mut(name) {
            for pending in &mut sub.queue {
                pending.hidden_until = None;
            }
        }
    }
}
