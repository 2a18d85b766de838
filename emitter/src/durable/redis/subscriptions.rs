//! The workers' subscriptions (the hash `{prefix}:subscriptions`, `lua/subscribe.lua`) and the
//! backlog per listener and event (`lua/backlog.lua`, a page at a time).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use super::entries::{into_array, into_int, into_text};
use super::RedisStore;
use crate::durable::{from_unix_millis, Backlog, Subscription};
use crate::error::BackendError;

impl RedisStore {
    /// Deletes the subscriptions of the listeners `replace`, records `subscriptions`, and
    /// returns how many it deleted.
    pub(super) async fn replace_subscriptions(
        &self,
        replace: &[&str],
        subscriptions: &[Subscription],
    ) -> Result<u64, BackendError> {
        let what = "record subscriptions";
        let mut invocation = self.invocation(&self.scripts.subscribe);
        invocation.arg(replace.len());
        for name in replace {
            invocation.arg(*name);
        }
        for subscription in subscriptions {
            invocation
                .arg(&subscription.event_id)
                .arg(&subscription.listener)
                .arg(subscription.concurrency.map_or(0, NonZeroU32::get))
                .arg(subscription.version);
        }
        let reply = self.eval(&invocation, what).await?;
        match reply.into_iter().next().map(into_int) {
            Some(Ok(deleted)) => Ok(u64::try_from(deleted).unwrap_or(0)),
            _ => Err(self.unexpected(what, "no count of deleted subscriptions")),
        }
    }

    pub(super) async fn read_subscriptions(&self) -> Result<Vec<Subscription>, BackendError> {
        let what = "read subscriptions";
        let mut all = ::redis::cmd("HGETALL");
        all.arg(self.key("subscriptions"));
        let flat = into_array(self.command(&all, what).await?)
            .map_err(|problem| self.unexpected(what, &problem))?;
        let mut subscriptions = Vec::new();
        let mut flat = flat.into_iter();
        while let (Some(field), Some(value)) = (flat.next(), flat.next()) {
            let field = into_text(field).map_err(|problem| self.unexpected(what, &problem))?;
            let value = into_text(value).map_err(|problem| self.unexpected(what, &problem))?;
            let mut parts = value.split(' ');
            let (Some((event_id, listener)), Some(limit), Some(seen)) =
                (field.split_once('\n'), parts.next(), parts.next())
            else {
                return Err(self.unexpected(what, &format!("a malformed subscription {field:?}")));
            };
            // A value without a version is of version 1.
            let version = parts.next().unwrap_or("1");
            let (Ok(limit), Ok(seen), Ok(version)) = (
                limit.parse::<u32>(),
                seen.parse::<i64>(),
                version.parse::<u32>(),
            ) else {
                return Err(self.unexpected(what, &format!("a malformed subscription {value:?}")));
            };
            subscriptions.push(
                Subscription::new(event_id, listener, from_unix_millis(seen))
                    .concurrency(NonZeroU32::new(limit))
                    .with_version(version),
            );
        }
        subscriptions.sort_by(|a, b| (&a.event_id, &a.listener).cmp(&(&b.event_id, &b.listener)));
        Ok(subscriptions)
    }

    /// Where a scan of every delivery starts, for the scripts that read them a page at a time
    /// (`kind`, name, cursor): each listener's stream from its first entry, then the delayed
    /// set from its first member.
    pub(super) async fn places(
        &self,
        what: &str,
    ) -> Result<Vec<(&'static str, String, String)>, BackendError> {
        let mut members = ::redis::cmd("SMEMBERS");
        members.arg(self.key("listeners"));
        let listeners = into_array(self.command(&members, what).await?)
            .map_err(|problem| self.unexpected(what, &problem))?;
        let mut places: Vec<(&'static str, String, String)> = Vec::new();
        for listener in listeners {
            let listener =
                into_text(listener).map_err(|problem| self.unexpected(what, &problem))?;
            places.push(("stream", listener, "-".to_owned()));
        }
        places.push(("delayed", String::new(), "0".to_owned()));
        Ok(places)
    }

    pub(super) async fn count_backlog(&self) -> Result<Vec<Backlog>, BackendError> {
        const PAGE: usize = 1000;
        let what = "count deliveries per listener";
        let places = self.places(what).await?;
        let mut found: BTreeMap<(String, String, u32), u64> = BTreeMap::new();
        for (kind, name, mut cursor) in places {
            loop {
                let mut invocation = self.invocation(&self.scripts.backlog);
                invocation.arg(kind).arg(&name).arg(&cursor).arg(PAGE);
                let mut reply = self.eval(&invocation, what).await?.into_iter();
                let Some(Ok(next)) = reply.next().map(into_text) else {
                    return Err(self.unexpected(what, "no cursor"));
                };
                while let (Some(listener), Some(event), Some(version), Some(count)) =
                    (reply.next(), reply.next(), reply.next(), reply.next())
                {
                    let (Ok(listener), Ok(event), Ok(version), Ok(count)) = (
                        into_text(listener),
                        into_text(event),
                        into_text(version),
                        into_int(count),
                    ) else {
                        return Err(self.unexpected(what, "a malformed count"));
                    };
                    let Ok(version) = version.parse::<u32>() else {
                        return Err(self.unexpected(what, "a malformed event version"));
                    };
                    *found.entry((listener, event, version)).or_default() +=
                        u64::try_from(count).unwrap_or(0);
                }
                if next.is_empty() {
                    break;
                }
                cursor = next;
            }
        }
        Ok(found
            .into_iter()
            .map(|((listener, event, version), count)| {
                Backlog::new(listener, event, count).with_version(version)
            })
            .collect())
    }
}
