//! The start-up compatibility check: what a store holds (listener names with unfinished
//! deliveries, their events and the events' versions, the workers' subscriptions) against what
//! this binary registers.
//!
//! A worker runs it at start ([`Durable`](super::Durable) logs each finding as a warning, or
//! refuses to start with [`DurableConfig::strict_compatibility`](super::DurableConfig::strict_compatibility));
//! [`Durable::compatibility`](super::Durable::compatibility) runs it on demand. It speaks for
//! one worker binary: run by a binary that does not run some listener on purpose (an emit-only
//! one, or one of several worker binaries sharing a store), it names that listener too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::SystemTime;

use super::{Backlog, Subscription};

/// What the check found: nothing when the store and the binary agree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compatibility {
    /// Each disagreement, with its fix.
    pub findings: Vec<Finding>,
}

/// One disagreement between the store and the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The store holds unfinished deliveries, or a subscription, under a listener name that
    /// this binary registers neither as a name nor as an alias: its deliveries wait for a
    /// listener that no longer exists (renamed, moved without `name = "..."`, or removed), and
    /// emits keep being routed to it while it is subscribed.
    UnknownListener {
        /// The listener name in the store.
        listener: String,
        /// Its unfinished deliveries.
        unfinished: u64,
        /// The event ids of its deliveries and subscriptions.
        events: Vec<String>,
        /// When a worker last recorded a subscription of it, if one did.
        subscribed: Option<SystemTime>,
    },
    /// The store holds unfinished deliveries of an event for a listener of this binary (by its
    /// name or an alias) that does not listen to that event here: the event's id changed, or
    /// the listener dropped it from its `events`.
    UnknownEvent {
        /// The event id in the store.
        event_id: String,
        /// The listener name the deliveries are stored under.
        listener: String,
        /// How many.
        unfinished: u64,
    },
    /// The store holds unfinished deliveries of an event at a version this binary cannot read:
    /// newer than its own ([`Event::VERSION`](crate::Event::VERSION)), stored by a newer build,
    /// or 0, which no build writes. A newer version waits for a worker of the newer build (this
    /// one leaves it, without using an attempt); version 0 is dead-lettered when claimed.
    UnreadableVersion {
        /// The event id in the store.
        event_id: String,
        /// The version the deliveries are stored at.
        version: u32,
        /// The version of the event in this binary.
        known: u32,
        /// The listener name the deliveries are stored under.
        listener: String,
        /// How many.
        unfinished: u64,
    },
}

/// What a binary registers, as the check needs it: each listener name (and alias) with the
/// event ids it listens to.
#[derive(Debug, Default)]
pub(crate) struct Registered {
    events_of: BTreeMap<String, BTreeSet<String>>,
    /// Each event id with the version of its type here: it reads that version and every older
    /// one (the derive refuses an event whose upcasters leave a version out).
    versions: BTreeMap<String, u32>,
}

impl Registered {
    /// Records that listener `name`, also known as `aliases`, listens to `events`.
    pub(crate) fn listener<'a>(
        &mut self,
        name: &str,
        aliases: &[&str],
        events: impl IntoIterator<Item = &'a str> + Clone,
    ) {
        for known in std::iter::once(name).chain(aliases.iter().copied()) {
            self.events_of
                .entry(known.to_owned())
                .or_default()
                .extend(events.clone().into_iter().map(str::to_owned));
        }
    }

    /// Records that this binary's type of event `event_id` is at `version`.
    pub(crate) fn event(&mut self, event_id: &str, version: u32) {
        self.versions.insert(event_id.to_owned(), version);
    }
}

/// What the store holds of a listener this binary does not know.
#[derive(Default)]
struct Unknown {
    unfinished: u64,
    events: BTreeSet<String>,
    subscribed: Option<SystemTime>,
}

impl Compatibility {
    /// Compares the store's `backlog` and `subscriptions` with what the binary `registered`.
    pub(crate) fn assess(
        registered: &Registered,
        backlog: &[Backlog],
        subscriptions: &[Subscription],
    ) -> Self {
        let mut unknown: BTreeMap<&str, Unknown> = BTreeMap::new();
        let mut findings = Vec::new();
        for held in backlog.iter().filter(|held| held.unfinished > 0) {
            match registered.events_of.get(&held.listener) {
                None => {
                    let listener = unknown.entry(&held.listener).or_default();
                    listener.unfinished += held.unfinished;
                    listener.events.insert(held.event_id.clone());
                }
                Some(events) if !events.contains(&held.event_id) => {
                    findings.push(Finding::UnknownEvent {
                        event_id: held.event_id.clone(),
                        listener: held.listener.clone(),
                        unfinished: held.unfinished,
                    });
                }
                Some(_) => {
                    let known = registered.versions.get(&held.event_id).copied();
                    if let Some(known) = known.filter(|known| !(1..=*known).contains(&held.version))
                    {
                        findings.push(Finding::UnreadableVersion {
                            event_id: held.event_id.clone(),
                            version: held.version,
                            known,
                            listener: held.listener.clone(),
                            unfinished: held.unfinished,
                        });
                    }
                }
            }
        }
        for subscription in subscriptions {
            if !registered.events_of.contains_key(&subscription.listener) {
                let listener = unknown.entry(&subscription.listener).or_default();
                listener.events.insert(subscription.event_id.clone());
                listener.subscribed = listener.subscribed.max(Some(subscription.seen_at));
            }
        }
        let listeners = unknown
            .into_iter()
            .map(|(listener, found)| Finding::UnknownListener {
                listener: listener.to_owned(),
                unfinished: found.unfinished,
                events: found.events.into_iter().collect(),
                subscribed: found.subscribed,
            });
        let mut all: Vec<Finding> = listeners.collect();
        all.extend(findings);
        Self { findings: all }
    }

    /// Whether the store and the binary agree.
    pub fn is_compatible(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.findings.is_empty() {
            return f.write_str("the store holds nothing this binary does not know");
        }
        for (index, finding) in self.findings.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "- {finding}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::UnknownListener {
                listener,
                unfinished,
                events,
                subscribed,
            } => {
                let events = events
                    .iter()
                    .map(|event| format!("`{event}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                write!(
                    f,
                    "listener `{listener}` is not registered by this binary, but the store holds \
                     {unfinished} unfinished deliveries for it (events {events})"
                )?;
                if subscribed.is_some() {
                    f.write_str(" and a worker's subscription routes new emits to it")?;
                }
                write!(
                    f,
                    ": if it was renamed or moved, add `aliases = [\"{listener}\"]` to its \
                     `#[listener]`; if it is gone, delete its deliveries (`emitter orphans \
                     discard {listener}`) and its subscriptions (`emitter unsubscribe \
                     {listener}`); if another worker binary runs it, ignore this"
                )
            }
            Finding::UnknownEvent {
                event_id,
                listener,
                unfinished,
            } => write!(
                f,
                "the store holds {unfinished} unfinished deliveries of event `{event_id}` for \
                 listener `{listener}`, which does not listen to `{event_id}` in this binary: \
                 if the event's id changed, give the event back its old id \
                 (`#[event(id = \"{event_id}\")]`); otherwise cancel those deliveries \
                 (`emitter deliveries --event {event_id}`, then `emitter cancel`)"
            ),
            Finding::UnreadableVersion {
                event_id,
                version,
                known,
                listener,
                unfinished,
            } if version > known => write!(
                f,
                "the store holds {unfinished} unfinished deliveries of event `{event_id}` at \
                 version {version} for listener `{listener}`, but this binary's `{event_id}` is \
                 version {known}: a newer build stored them, and they wait for its workers (this \
                 one leaves them, using no attempt); during a rolling deploy to that build this is \
                 expected, otherwise deploy workers of the newer build"
            ),
            Finding::UnreadableVersion {
                event_id,
                version,
                listener,
                unfinished,
                ..
            } => write!(
                f,
                "the store holds {unfinished} unfinished deliveries of event `{event_id}` at \
                 version {version} for listener `{listener}`, which no build writes: they are \
                 damaged and are dead-lettered when claimed; look at them with `emitter \
                 deliveries --event {event_id}`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> Registered {
        let mut registered = Registered::default();
        registered.listener("shop::mail", &["old::mail"], ["order_paid"]);
        registered.event("order_paid", 2);
        registered
    }

    #[test]
    fn known_names_and_aliases_with_their_events_are_compatible() {
        let backlog = [
            Backlog::new("shop::mail", "order_paid", 3),
            Backlog::new("old::mail", "order_paid", 2),
        ];
        let subscriptions = [Subscription::new(
            "order_paid",
            "shop::mail",
            SystemTime::now(),
        )];
        let found = Compatibility::assess(&registered(), &backlog, &subscriptions);
        assert!(found.is_compatible(), "{found}");
    }

    #[test]
    fn unknown_listeners_and_events_are_named_with_the_fix() {
        let seen = SystemTime::UNIX_EPOCH;
        let backlog = [
            Backlog::new("gone::mail", "order_paid", 4),
            Backlog::new("shop::mail", "order_payed", 1),
        ];
        let subscriptions = [Subscription::new("order_shipped", "gone::mail", seen)];
        let found = Compatibility::assess(&registered(), &backlog, &subscriptions);
        assert_eq!(
            found.findings,
            [
                Finding::UnknownListener {
                    listener: "gone::mail".into(),
                    unfinished: 4,
                    events: vec!["order_paid".into(), "order_shipped".into()],
                    subscribed: Some(seen),
                },
                Finding::UnknownEvent {
                    event_id: "order_payed".into(),
                    listener: "shop::mail".into(),
                    unfinished: 1,
                },
            ]
        );
        let text = found.to_string();
        assert!(text.contains("aliases = [\"gone::mail\"]"), "{text}");
        assert!(text.contains("#[event(id = \"order_payed\")]"), "{text}");
    }

    #[test]
    fn versions_this_binary_cannot_read_are_named() {
        let backlog = [
            Backlog::new("shop::mail", "order_paid", 5).with_version(1),
            Backlog::new("shop::mail", "order_paid", 6).with_version(2),
            Backlog::new("shop::mail", "order_paid", 7).with_version(3),
            Backlog::new("old::mail", "order_paid", 1).with_version(0),
        ];
        let found = Compatibility::assess(&registered(), &backlog, &[]);
        assert_eq!(
            found.findings,
            [
                Finding::UnreadableVersion {
                    event_id: "order_paid".into(),
                    version: 3,
                    known: 2,
                    listener: "shop::mail".into(),
                    unfinished: 7,
                },
                Finding::UnreadableVersion {
                    event_id: "order_paid".into(),
                    version: 0,
                    known: 2,
                    listener: "old::mail".into(),
                    unfinished: 1,
                },
            ],
            "versions 1 and 2 are read (2 is this binary's, 1 through its upcaster)"
        );
        let text = found.to_string();
        assert!(
            text.contains("version 3") && text.contains("newer build"),
            "{text}"
        );
        assert!(text.contains("which no build writes"), "{text}");
    }
}
