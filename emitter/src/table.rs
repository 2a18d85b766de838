//! The event table: built at start from the registrations, validated, printable.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::context::TypeMap;
use crate::durable::TxKind;
use crate::error::StartError;
use crate::event::{self, DecodeError, EventRegistration};
use crate::listener::{AnyAdapter, ListenerRegistration, StateKey};
use crate::policy::DeliveryPolicy;
use crate::stats::DeliveryStats;

/// Which listeners run for which event, fixed when the emitter is built.
///
/// Listeners of an event are kept in name order, so the order is the same on every run and every
/// machine. Print the table (`println!("{}", emitter.table())`) to see every event with its
/// listeners and where they are defined.
#[derive(Debug)]
pub struct EventTable {
    events: Vec<EventEntry>,
    by_type: TypeMap<usize>,
    /// Event ids to entries, for deliveries loaded from a durable store.
    by_id: HashMap<&'static str, usize>,
    listeners: Vec<ListenerInfo>,
    listener_count: usize,
    /// Per (event, listener) pair, by [`ListenerEntry::pair`]: where it is.
    pairs: Vec<(usize, usize)>,
}

/// One listener of the table, whatever its events: its effective policy.
#[derive(Debug)]
pub(crate) struct ListenerInfo {
    pub(crate) name: &'static str,
    /// Its old names: deliveries stored under them are its own.
    pub(crate) aliases: &'static [&'static str],
    pub(crate) policy: DeliveryPolicy,
}

#[derive(Debug)]
pub(crate) struct EventEntry {
    pub(crate) id: &'static str,
    pub(crate) type_name: &'static str,
    pub(crate) location: Option<(&'static str, u32)>,
    /// How durable backends store the event; `None` for a type missing from the registry.
    pub(crate) codec: Option<&'static EventRegistration>,
    pub(crate) listeners: Vec<ListenerEntry>,
}

#[derive(Debug)]
pub(crate) struct ListenerEntry {
    pub(crate) name: &'static str,
    pub(crate) aliases: &'static [&'static str],
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) call: &'static dyn AnyAdapter,
    /// Whether the listener takes something from the emitter's context (state, the emitter).
    pub(crate) context: bool,
    /// The store transaction the listener runs in, when it takes one.
    pub(crate) transaction: Option<TxKind>,
    /// Index of the listener in [`EventTable::listeners`].
    pub(crate) listener: usize,
    /// Index of this (event, listener) pair among all pairs of the table.
    pub(crate) pair: usize,
    pub(crate) stats: DeliveryStats,
}

impl ListenerEntry {
    /// Whether deliveries stored under `name` are this listener's: its name or an alias.
    pub(crate) fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

impl EventTable {
    /// Builds the table from the event registry and the given listeners, and checks it.
    pub(crate) fn build(
        listeners: &[&'static ListenerRegistration],
        provided_states: &HashSet<TypeId>,
        default_policy: DeliveryPolicy,
    ) -> Result<Self, StartError> {
        let mut table = EventTable {
            events: Vec::new(),
            by_type: TypeMap::default(),
            by_id: HashMap::new(),
            listeners: Vec::new(),
            listener_count: 0,
            pairs: Vec::new(),
        };
        let mut ids: HashMap<&'static str, &'static str> = HashMap::new();
        let mut registrations: Vec<&'static EventRegistration> = event::registered().collect();
        registrations.sort_by_key(|registration| (registration.id, registration.type_name));
        for registration in registrations {
            if let Some(first) = ids.insert(registration.id, registration.type_name) {
                return Err(StartError::DuplicateEventId {
                    id: registration.id,
                    first,
                    second: registration.type_name,
                });
            }
            table.insert_event(
                (registration.type_id)(),
                registration.id,
                registration.type_name,
                Some(registration),
            );
        }

        let mut names: HashMap<&'static str, &'static ListenerRegistration> = HashMap::new();
        for &listener in listeners {
            match names.get(listener.name) {
                Some(&seen) if std::ptr::eq(seen, listener) => {}
                Some(&seen) => {
                    return Err(StartError::DuplicateListenerName {
                        name: listener.name,
                        first: seen.location(),
                        second: listener.location(),
                    })
                }
                None => {
                    names.insert(listener.name, listener);
                }
            }
        }
        // An alias names the same deliveries as a name: it may not be another listener's.
        let mut taken: HashMap<&'static str, &'static ListenerRegistration> = names.clone();
        let mut by_name: Vec<&'static ListenerRegistration> = names.values().copied().collect();
        by_name.sort_by_key(|listener| listener.name);
        for listener in by_name {
            for &alias in listener.aliases {
                match taken.insert(alias, listener) {
                    Some(seen) if !std::ptr::eq(seen, listener) => {
                        return Err(StartError::DuplicateListenerName {
                            name: alias,
                            first: seen.location(),
                            second: listener.location(),
                        })
                    }
                    _ => {}
                }
            }
        }
        let mut listeners: Vec<&'static ListenerRegistration> = names.into_values().collect();
        listeners.sort_by_key(|listener| listener.name);
        for (index, listener) in listeners.into_iter().enumerate() {
            table.listeners.push(ListenerInfo {
                name: listener.name,
                aliases: listener.aliases,
                policy: default_policy.with_overrides(&listener.policy),
            });
            for handler in listener.handlers {
                check_states(listener, handler.states, provided_states)?;
                let type_id = (handler.event_type)();
                let event = match table.by_type.get(&type_id) {
                    Some(&event) => event,
                    None => table.insert_event(
                        type_id,
                        handler.event_id,
                        (handler.event_type_name)(),
                        None,
                    ),
                };
                table
                    .pairs
                    .push((event, table.events[event].listeners.len()));
                table.events[event].listeners.push(ListenerEntry {
                    name: listener.name,
                    aliases: listener.aliases,
                    file: listener.file,
                    line: listener.line,
                    call: handler.call,
                    context: handler.context,
                    transaction: handler.transaction,
                    listener: index,
                    pair: table.listener_count,
                    stats: DeliveryStats::default(),
                });
                table.listener_count += 1;
            }
        }
        Ok(table)
    }

    fn insert_event(
        &mut self,
        type_id: TypeId,
        id: &'static str,
        type_name: &'static str,
        codec: Option<&'static EventRegistration>,
    ) -> usize {
        let index = self.events.len();
        self.events.push(EventEntry {
            id,
            type_name,
            location: codec.map(|registration| (registration.file, registration.line)),
            codec,
            listeners: Vec::new(),
        });
        self.by_type.insert(type_id, index);
        self.by_id.entry(id).or_insert(index);
        index
    }

    /// The entry of the event with this id, and its index.
    pub(crate) fn event_by_id(&self, id: &str) -> Option<(usize, &EventEntry)> {
        self.by_id
            .get(id)
            .map(|&index| (index, &self.events[index]))
    }

    /// Why this binary cannot read the events of `event_id` stored at `version` (for a check of
    /// what a durable store holds), or `None` when it can: it knows the event, and `version` is
    /// its own ([`Event::VERSION`](crate::Event::VERSION)) or an older one it has the upcasters
    /// for.
    pub fn unreadable_version(&self, event_id: &str, version: u32) -> Option<String> {
        let Some((_, entry)) = self.event_by_id(event_id) else {
            return Some(format!(
                "no event type of this binary has the id `{event_id}`"
            ));
        };
        let Some(registration) = entry.codec else {
            return Some(format!("event `{event_id}` is not registered"));
        };
        match registration.can_read(version) {
            Ok(()) => None,
            Err(DecodeError::Newer { stored, known }) => Some(format!(
                "version {stored} of event `{event_id}` is newer than this binary's {known}: \
                 a worker of a newer build delivers it"
            )),
            Err(DecodeError::Undecodable(reason)) => Some(reason),
        }
    }

    /// The index of an event type's entry and how many listeners it has.
    pub(crate) fn index_of(&self, type_id: TypeId) -> Option<(usize, usize)> {
        self.by_type
            .get(&type_id)
            .map(|&index| (index, self.events[index].listeners.len()))
    }

    pub(crate) fn event(&self, index: usize) -> Option<&EventEntry> {
        self.events.get(index)
    }

    /// How many listeners the event at `index` has.
    pub(crate) fn listener_count(&self, index: usize) -> u64 {
        self.events
            .get(index)
            .map_or(0, |entry| entry.listeners.len() as u64)
    }

    pub(crate) fn listener_entry(&self, event: usize, slot: usize) -> Option<&ListenerEntry> {
        self.events
            .get(event)
            .and_then(|entry| entry.listeners.get(slot))
    }

    /// The event id and the listener of a pair, by [`ListenerEntry::pair`].
    pub(crate) fn pair(&self, pair: usize) -> Option<(&'static str, &ListenerEntry)> {
        let &(event, slot) = self.pairs.get(pair)?;
        let entry = self.events.get(event)?;
        Some((entry.id, entry.listeners.get(slot)?))
    }

    pub(crate) fn events(&self) -> &[EventEntry] {
        &self.events
    }

    /// The effective delivery policy of a listener.
    pub(crate) fn policy(&self, listener: &ListenerEntry) -> &DeliveryPolicy {
        &self.listeners[listener.listener].policy
    }

    pub(crate) fn listener_infos(&self) -> &[ListenerInfo] {
        &self.listeners
    }

    /// A listener whose policy waits on tokio's timer (retries or a timeout), if any.
    pub(crate) fn listener_needing_timer(&self) -> Option<&'static str> {
        self.listeners
            .iter()
            .find(|info| info.policy.max_attempts() > 1 || info.policy.attempt_timeout().is_some())
            .map(|info| info.name)
    }

    /// A listener that takes a store transaction other than `offered` (what the backend opens),
    /// and the transaction it takes.
    pub(crate) fn listener_needing_transaction(
        &self,
        offered: Option<TxKind>,
    ) -> Option<(&'static str, TxKind)> {
        self.events
            .iter()
            .flat_map(|entry| &entry.listeners)
            .find_map(|listener| {
                listener
                    .transaction
                    .filter(|needed| Some(*needed) != offered)
                    .map(|needed| (listener.name, needed))
            })
    }

    pub(crate) fn entry(&self, type_id: TypeId) -> Option<&EventEntry> {
        self.by_type.get(&type_id).map(|&index| &self.events[index])
    }

    /// The names of the listeners of event `E`, in the order they are started.
    pub fn listeners_of<E: crate::Event>(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entry(TypeId::of::<E>())
            .into_iter()
            .flat_map(|entry| entry.listeners.iter().map(|listener| listener.name))
    }

    /// The ids of every known event, whether or not anything listens to it.
    pub fn event_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.events.iter().map(|entry| entry.id)
    }

    /// The ids of known events that no listener of this table listens to.
    ///
    /// An event you expected listeners for appearing here usually means the crate defining them
    /// was dropped by the linker: see [`EmitterBuilder::expect_listener`](crate::EmitterBuilder::expect_listener).
    pub fn events_without_listeners(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.events
            .iter()
            .filter(|entry| entry.listeners.is_empty())
            .map(|entry| entry.id)
    }

    /// How many (event, listener) pairs the table holds.
    pub fn len(&self) -> usize {
        self.listener_count
    }

    /// Whether no listener listens to any event.
    pub fn is_empty(&self) -> bool {
        self.listener_count == 0
    }
}

fn check_states(
    listener: &ListenerRegistration,
    states: &[StateKey],
    provided: &HashSet<TypeId>,
) -> Result<(), StartError> {
    match states
        .iter()
        .find(|key| !provided.contains(&(key.type_id)()))
    {
        Some(missing) => Err(StartError::MissingState {
            listener: listener.name,
            type_name: (missing.type_name)(),
        }),
        None => Ok(()),
    }
}

impl fmt::Display for EventTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut events: Vec<&EventEntry> = self.events.iter().collect();
        events.sort_by_key(|entry| entry.id);
        for entry in events {
            write!(f, "{} ({}", entry.id, entry.type_name)?;
            if let Some((file, line)) = entry.location {
                write!(f, ", {file}:{line}")?;
            }
            writeln!(f, ")")?;
            if entry.listeners.is_empty() {
                writeln!(f, "  (no listeners)")?;
            }
            for listener in &entry.listeners {
                writeln!(
                    f,
                    "  -> {} ({}:{})",
                    listener.name, listener.file, listener.line
                )?;
            }
        }
        Ok(())
    }
}
