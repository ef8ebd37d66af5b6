//! Counting what one client receives in the broadcast scenario, and what it should have.
//!
//! Clients are numbered across the run: room `r` holds clients `r*C .. r*C + C`. Each client's
//! tally keeps, per sender of its room, the next sequence number it expects, so a delivery is
//! new (in order or after a gap), a duplicate, or foreign (from a client of another room).

use crate::message::Stamp;

/// What one received message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The first copy of this sender's message, whether or not earlier ones arrived.
    New,
    /// A sequence number at or below one already received from this sender.
    Duplicate,
    /// From a client that is not in this room.
    Foreign,
}

/// One client's count of the messages it received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    first_client: u64,
    next_seq: Vec<u64>,
    /// New deliveries.
    pub received: u64,
    /// New deliveries that skipped sequence numbers (each skipped number is a loss).
    pub gaps: u64,
    pub duplicates: u64,
    pub foreign: u64,
}

impl Tally {
    /// A tally for a client of the room whose clients are `first_client ..
    /// first_client + clients`.
    pub fn new(first_client: u64, clients: usize) -> Self {
        Tally {
            first_client,
            next_seq: vec![0; clients],
            ..Tally::default()
        }
    }

    pub fn record(&mut self, stamp: Stamp) -> Delivery {
        let Some(next) = stamp
            .client
            .checked_sub(self.first_client)
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| self.next_seq.get_mut(index))
        else {
            self.foreign += 1;
            return Delivery::Foreign;
        };
        if stamp.seq < *next {
            self.duplicates += 1;
            return Delivery::Duplicate;
        }
        if stamp.seq > *next {
            self.gaps += 1;
        }
        *next = stamp.seq + 1;
        self.received += 1;
        Delivery::New
    }

    /// Adds another client's counts to this one (for the run's totals).
    pub fn absorb(&mut self, other: &Tally) {
        self.received += other.received;
        self.gaps += other.gaps;
        self.duplicates += other.duplicates;
        self.foreign += other.foreign;
    }
}

/// Deliveries a complete run makes: every message reaches every client of its room, the
/// sender included, so `rooms * clients * messages * clients`. Saturates instead of
/// overflowing.
pub fn expected_deliveries(rooms: u64, clients_per_room: u64, messages: u64) -> u64 {
    rooms
        .saturating_mul(clients_per_room)
        .saturating_mul(messages)
        .saturating_mul(clients_per_room)
}

/// Deliveries that never arrived (never negative: duplicates are not counted as received).
pub fn lost_deliveries(expected: u64, received: u64) -> u64 {
    expected.saturating_sub(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(client: u64, seq: u64) -> Stamp {
        Stamp {
            client,
            seq,
            nanos: 0,
        }
    }

    #[test]
    fn counts_in_order_deliveries_per_sender() {
        // Room 1 of a run with 3 clients per room: clients 3, 4 and 5.
        let mut tally = Tally::new(3, 3);
        for seq in 0..4 {
            for client in 3..6 {
                assert_eq!(tally.record(stamp(client, seq)), Delivery::New);
            }
        }
        assert_eq!(tally.received, 12);
        assert_eq!((tally.gaps, tally.duplicates, tally.foreign), (0, 0, 0));
    }

    #[test]
    fn spots_gaps_duplicates_and_other_rooms() {
        let mut tally = Tally::new(3, 3);
        assert_eq!(tally.record(stamp(4, 0)), Delivery::New);
        assert_eq!(tally.record(stamp(4, 2)), Delivery::New);
        assert_eq!(tally.record(stamp(4, 2)), Delivery::Duplicate);
        assert_eq!(tally.record(stamp(4, 1)), Delivery::Duplicate);
        assert_eq!(tally.record(stamp(2, 0)), Delivery::Foreign);
        assert_eq!(tally.record(stamp(6, 0)), Delivery::Foreign);
        assert_eq!(tally.record(stamp(u64::MAX, 0)), Delivery::Foreign);
        assert_eq!(
            (tally.received, tally.gaps, tally.duplicates, tally.foreign),
            (2, 1, 2, 3)
        );
    }

    #[test]
    fn totals_add_up() {
        let mut total = Tally::default();
        let mut one = Tally::new(0, 2);
        one.record(stamp(0, 0));
        one.record(stamp(1, 1));
        total.absorb(&one);
        total.absorb(&one);
        assert_eq!((total.received, total.gaps), (4, 2));
    }

    #[test]
    fn expected_and_lost() {
        assert_eq!(expected_deliveries(1, 100, 200), 2_000_000);
        assert_eq!(expected_deliveries(100, 10, 200), 2_000_000);
        assert_eq!(expected_deliveries(2, 3, 0), 0);
        assert_eq!(expected_deliveries(u64::MAX, 2, 2), u64::MAX);
        assert_eq!(lost_deliveries(10, 7), 3);
        assert_eq!(lost_deliveries(10, 12), 0);
    }
}
