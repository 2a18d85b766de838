//! The store's Lua scripts, one per file of `lua/`, each run after the shared prelude.

use ::redis::Script;

/// Shared by every script: the keys, and the helpers that read and write entries.
pub(super) const PRELUDE: &str = include_str!("lua/prelude.lua");

pub(super) struct Scripts {
    pub(super) open: Script,
    pub(super) insert: Script,
    pub(super) claim: Script,
    pub(super) extend: Script,
    pub(super) ack: Script,
    pub(super) retry: Script,
    pub(super) dead_letter: Script,
    pub(super) replay: Script,
    pub(super) counts: Script,
    pub(super) next_due: Script,
    pub(super) release: Script,
    pub(super) unfinished: Script,
    pub(super) subscribe: Script,
    pub(super) backlog: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let script = |body: &str| Script::new(&[PRELUDE, body].concat());
        Self {
            open: script(include_str!("lua/open.lua")),
            insert: script(include_str!("lua/insert.lua")),
            claim: script(include_str!("lua/claim.lua")),
            extend: script(include_str!("lua/extend.lua")),
            ack: script(include_str!("lua/ack.lua")),
            retry: script(include_str!("lua/retry.lua")),
            dead_letter: script(include_str!("lua/dead_letter.lua")),
            replay: script(include_str!("lua/replay.lua")),
            counts: script(include_str!("lua/counts.lua")),
            next_due: script(include_str!("lua/next_due.lua")),
            release: script(include_str!("lua/release.lua")),
            unfinished: script(include_str!("lua/unfinished.lua")),
            subscribe: script(include_str!("lua/subscribe.lua")),
            backlog: script(include_str!("lua/backlog.lua")),
        }
    }
}
