//! W3: sixteen event types in a ring, each with the sign-up's two fields. Listener `j` listens to events `j, j+1, j+2, j+3` (mod 16),
//! so each event has four listeners, and each listener adds the id to its own counter.
//!
//! One table below generates the events, the listeners, and the baseline's hand-written dispatch.
//! A mistake in the table makes the counters differ from [`expected_sums`], which every run checks.

use std::any::TypeId;

use emitter::{listener, listeners, EmitError, EmitId, Emitter, EmitterBuilder, Event, State};

use crate::counter::Counters;
use crate::signup::email;

/// How many event types, and listeners, the ring has.
pub const EVENTS: usize = 16;

/// How many events each listener listens to, and how many listeners each event has.
pub const FANOUT: usize = 4;

macro_rules! ring {
    ($(
        $slot:literal: $event:ident, $listener:ident on [$($on:ident),+] heard_by [$($by:ident),+];
    )+) => {
        $(
            /// One of W3's sixteen events.
            #[derive(Event, Debug, Clone)]
            pub struct $event {
                pub email: String,
                pub id: u64,
            }

            /// One of W3's sixteen listeners: adds the id to its counter.
            #[listener(events = [$($on),+])]
            pub async fn $listener(id: u64, counters: State<Counters>) {
                counters.add($slot, id);
            }
        )+

        /// A W3 event of any of the sixteen types, for the baseline's channel.
        #[derive(Debug, Clone)]
        pub enum RingEvent {
            $($event($event),)+
        }

        impl RingEvent {
            /// Event number `index` of the ring (`index < 16`) with id `id`.
            pub fn new(index: usize, id: u64) -> Self {
                match index {
                    $($slot => RingEvent::$event($event { email: email(id), id }),)+
                    _ => panic!("event index {index} is outside the ring (0..{EVENTS})"),
                }
            }
        }

        /// Emits event number `index` of the ring (`index < 16`) with id `id`.
        pub fn emit(emitter: &Emitter, index: usize, id: u64) -> Result<EmitId, EmitError> {
            match index {
                $($slot => emitter.emit($event { email: email(id), id }),)+
                _ => panic!("event index {index} is outside the ring (0..{EVENTS})"),
            }
        }

        /// The builder with W3's sixteen listeners, and only those.
        pub fn with_listeners(builder: EmitterBuilder) -> EmitterBuilder {
            builder.listeners(listeners![$($listener),+])
        }

        /// The baseline's dispatch: calls the event's four listeners directly, one after the other.
        pub async fn deliver_by_hand(event: RingEvent, counters: &Counters) {
            match event {
                $(RingEvent::$event(event) => {
                    $($by(event.id, State(counters.clone())).await;)+
                })+
            }
        }

        /// Every (event type, listener name) pair of the ring, for a hand-built table.
        pub fn pairs() -> Vec<(TypeId, &'static str)> {
            let mut pairs = Vec::with_capacity(EVENTS * FANOUT);
            $($(pairs.push((TypeId::of::<$on>(), stringify!($listener)));)+)+
            pairs
        }
    };
}

ring! {
    0: Ring0, ring_0 on [Ring0, Ring1, Ring2, Ring3] heard_by [ring_13, ring_14, ring_15, ring_0];
    1: Ring1, ring_1 on [Ring1, Ring2, Ring3, Ring4] heard_by [ring_14, ring_15, ring_0, ring_1];
    2: Ring2, ring_2 on [Ring2, Ring3, Ring4, Ring5] heard_by [ring_15, ring_0, ring_1, ring_2];
    3: Ring3, ring_3 on [Ring3, Ring4, Ring5, Ring6] heard_by [ring_0, ring_1, ring_2, ring_3];
    4: Ring4, ring_4 on [Ring4, Ring5, Ring6, Ring7] heard_by [ring_1, ring_2, ring_3, ring_4];
    5: Ring5, ring_5 on [Ring5, Ring6, Ring7, Ring8] heard_by [ring_2, ring_3, ring_4, ring_5];
    6: Ring6, ring_6 on [Ring6, Ring7, Ring8, Ring9] heard_by [ring_3, ring_4, ring_5, ring_6];
    7: Ring7, ring_7 on [Ring7, Ring8, Ring9, Ring10] heard_by [ring_4, ring_5, ring_6, ring_7];
    8: Ring8, ring_8 on [Ring8, Ring9, Ring10, Ring11] heard_by [ring_5, ring_6, ring_7, ring_8];
    9: Ring9, ring_9 on [Ring9, Ring10, Ring11, Ring12] heard_by [ring_6, ring_7, ring_8, ring_9];
    10: Ring10, ring_10 on [Ring10, Ring11, Ring12, Ring13] heard_by [ring_7, ring_8, ring_9, ring_10];
    11: Ring11, ring_11 on [Ring11, Ring12, Ring13, Ring14] heard_by [ring_8, ring_9, ring_10, ring_11];
    12: Ring12, ring_12 on [Ring12, Ring13, Ring14, Ring15] heard_by [ring_9, ring_10, ring_11, ring_12];
    13: Ring13, ring_13 on [Ring13, Ring14, Ring15, Ring0] heard_by [ring_10, ring_11, ring_12, ring_13];
    14: Ring14, ring_14 on [Ring14, Ring15, Ring0, Ring1] heard_by [ring_11, ring_12, ring_13, ring_14];
    15: Ring15, ring_15 on [Ring15, Ring0, Ring1, Ring2] heard_by [ring_12, ring_13, ring_14, ring_15];
}

/// Which event of the ring the `i`-th emit (from 0) is: round-robin.
pub fn index_of_emit(i: u64) -> usize {
    (i % EVENTS as u64) as usize
}

/// What each listener's counter holds after emits `0..n`, where emit `i` is event
/// [`index_of_emit(i)`](index_of_emit) with id `i + 1`. Computed from the ring's rule, not from
/// the table above, so that it checks the table.
pub fn expected_sums(n: u64) -> Vec<u64> {
    let mut sums = vec![0; EVENTS];
    for i in 0..n {
        let event = index_of_emit(i);
        for (listener, sum) in sums.iter_mut().enumerate() {
            if (event + EVENTS - listener) % EVENTS < FANOUT {
                *sum += i + 1;
            }
        }
    }
    sums
}
