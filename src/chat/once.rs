//! Each message reaches a socket's client once, when a live delivery and a `resync` cross.
//!
//! A reconnecting client's socket hears live messages from the moment it opens, before its
//! `resync` is answered; and a message stored just before a resync reads may still be on its
//! way live (from another instance, over the bus) when the resync has sent it. So each socket
//! keeps the messages it wrote lately: a resync leaves out what the socket delivered live, and a
//! live delivery of something it already wrote is left out. An explicit resync still sends again
//! what an earlier resync sent — the client asked for it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::ids::MessageId;

/// How long a socket remembers a message it wrote: far longer than a live delivery takes.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(120);
/// Most messages a socket remembers (a resync of a busy account stays bounded).
const MOST_REMEMBERED: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Live,
    Resync,
}

/// The messages one socket wrote in the last [`REMEMBERED_FOR`]. Empty (and unallocated)
/// for a socket that wrote none.
#[derive(Debug, Default)]
pub struct Written {
    ways: HashMap<MessageId, Way>,
    order: VecDeque<(Instant, MessageId)>,
}

impl Written {
    /// Whether a live delivery of message `id` is to be written: not when the socket already
    /// wrote it, live or by a resync.
    pub fn live(&mut self, id: MessageId, now: Instant) -> bool {
        self.forget_before(now);
        if self.ways.contains_key(&id) {
            return false;
        }
        self.remember(id, Way::Live, now);
        true
    }

    /// Whether a resync is to write message `id`: not when the socket delivered it live.
    /// `recent`: stored lately enough that a live delivery of it may still be on its way.
    pub fn resync(&mut self, id: MessageId, recent: bool, now: Instant) -> bool {
        self.forget_before(now);
        match self.ways.get(&id) {
            Some(Way::Live) => false,
            Some(Way::Resync) => true,
            None => {
                if recent {
                    self.remember(id, Way::Resync, now);
                }
                true
            }
        }
    }

    fn remember(&mut self, id: MessageId, way: Way, now: Instant) {
        if self.order.len() >= MOST_REMEMBERED
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.ways.remove(&oldest);
        }
        self.ways.insert(id, way);
        self.order.push_back((now, id));
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.order.front() {
            if now.duration_since(at) < REMEMBERED_FOR {
                break;
            }
            self.order.pop_front();
            self.ways.remove(&id);
        }
        if self.order.is_empty() && self.order.capacity() > 0 {
            // An idle socket gives its room back.
            self.order = VecDeque::new();
            self.ways = HashMap::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Event {
        Live(u8),
        Resync(u8),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0u8..8).prop_map(Event::Live),
            (0u8..8).prop_map(Event::Resync)
        ]
    }

    fn id(n: u8) -> MessageId {
        uuid::Uuid::from_u128(u128::from(n) + 1).into()
    }

    proptest! {
        /// However live deliveries and resyncs of recent messages interleave on one socket,
        /// a message is written live at most once, never both live and by a resync, and the
        /// first time the socket hears of a message it writes it (nothing is lost).
        #[test]
        fn a_socket_writes_each_recent_message_once_live_or_by_resync(
            events in prop::collection::vec(event(), 0..64),
        ) {
            let mut written = Written::default();
            let now = Instant::now();
            let mut live = [0u32; 8];
            let mut by_resync = [0u32; 8];
            let mut heard = [false; 8];
            for e in events {
                let (n, wrote) = match e {
                    Event::Live(n) => (n, written.live(id(n), now)),
                    Event::Resync(n) => (n, written.resync(id(n), true, now)),
                };
                let i = usize::from(n);
                if !heard[i] {
                    prop_assert!(wrote, "the first word of message {} was dropped", n);
                    heard[i] = true;
                }
                if wrote {
                    match e {
                        Event::Live(_) => live[i] += 1,
                        Event::Resync(_) => by_resync[i] += 1,
                    }
                }
                prop_assert!(live[i] <= 1, "message {} written live twice", n);
                prop_assert!(
                    live[i] == 0 || by_resync[i] == 0,
                    "message {} written live and by a resync",
                    n
                );
            }
        }
    }

    #[test]
    fn a_message_is_forgotten_after_the_window_and_old_resync_pages_are_not_remembered() {
        let mut written = Written::default();
        let start = Instant::now();
        assert!(written.live(id(1), start));
        assert!(!written.resync(id(1), true, start + Duration::from_secs(1)));
        // Long after, an explicit resync gets it again.
        assert!(written.resync(id(1), true, start + REMEMBERED_FOR));
        assert!(
            written.order.len() == 1,
            "the resync copy is remembered in its place"
        );
        // An old message sent by a resync is not kept: no live delivery of it can be coming.
        assert!(written.resync(id(2), false, start + REMEMBERED_FOR));
        assert!(written.live(id(2), start + REMEMBERED_FOR));
        // Everything forgotten gives the room back.
        written.forget_before(start + REMEMBERED_FOR * 3);
        assert_eq!(written.order.capacity(), 0);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut written = Written::default();
        let now = Instant::now();
        for n in 0..(MOST_REMEMBERED as u128 + 100) {
            assert!(written.live(uuid::Uuid::from_u128(n).into(), now));
        }
        assert_eq!(written.order.len(), MOST_REMEMBERED);
        assert_eq!(written.ways.len(), MOST_REMEMBERED);
    }
}
