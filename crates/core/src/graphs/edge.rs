//! One edge's state under writes that may arrive in any order, any number of times
//! (FlockDB's rule, made exact). Pure.
//!
//! Every piece of an edge is a join of its writes, so the result never depends on their order:
//! - the state is that of the newest write, ties at the same instant going to the state of
//!   higher priority (removed > archived > negative > normal);
//! - the position is that of the newest write that gives one (ties: the larger position);
//!   until one does, it is the time of the edge's first add (or, before any add arrived, of
//!   its first write), in microseconds, so a late removal never moves it.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Normal,
    Removed,
    Archived,
    Negative,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Normal,
        State::Removed,
        State::Archived,
        State::Negative,
    ];

    /// The number stored for the state (FlockDB's: normal 0, removed 1, archived 2, negative 3).
    pub fn code(self) -> i16 {
        match self {
            State::Normal => 0,
            State::Removed => 1,
            State::Archived => 2,
            State::Negative => 3,
        }
    }

    pub fn from_code(code: i16) -> Option<State> {
        State::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Normal => "normal",
            State::Removed => "removed",
            State::Archived => "archived",
            State::Negative => "negative",
        }
    }

    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Which of two writes at the same instant wins.
    pub fn priority(self) -> u8 {
        match self {
            State::Normal => 0,
            State::Negative => 1,
            State::Archived => 2,
            State::Removed => 3,
        }
    }
}

/// A write to one edge: its instant (microseconds), the state it sets, and the position it
/// gives, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub at: i64,
    pub state: State,
    pub position: Option<i64>,
}

/// What is stored of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub state: State,
    /// The instant of the write that set the state.
    pub state_at: i64,
    pub position: i64,
    /// The instant of the write that gave the position; None while it is the first write's.
    pub position_at: Option<i64>,
    /// The earliest add's instant (`first_add`), or the earliest write's while no add came.
    pub first_at: i64,
    pub first_add: bool,
}

fn state_order(at: i64, state: State) -> (i64, u8) {
    (at, state.priority())
}

impl Edge {
    pub fn new(write: Write) -> Edge {
        Edge {
            state: write.state,
            state_at: write.at,
            position: write.position.unwrap_or(write.at),
            position_at: write.position.map(|_| write.at),
            first_at: write.at,
            first_add: write.state == State::Normal,
        }
    }

    /// The edge after `write`, whatever came before it.
    pub fn apply(self, write: Write) -> Edge {
        let mut e = self;
        if state_order(write.at, write.state) > state_order(e.state_at, e.state) {
            e.state = write.state;
            e.state_at = write.at;
        }
        match (write.position, e.position_at) {
            (Some(p), Some(pa)) => {
                if (write.at, p).cmp(&(pa, e.position)) == Ordering::Greater {
                    e.position = p;
                    e.position_at = Some(write.at);
                }
            }
            (Some(p), None) => {
                e.position = p;
                e.position_at = Some(write.at);
            }
            (None, _) => {}
        }
        // An add beats any other write; among equals, the earlier (Reverse: every i64 time,
        // where negating i64::MIN would overflow).
        let candidate = (write.state == State::Normal, std::cmp::Reverse(write.at));
        if candidate > (e.first_add, std::cmp::Reverse(e.first_at)) {
            e.first_add = candidate.0;
            e.first_at = write.at;
        }
        if e.position_at.is_none() {
            e.position = e.first_at;
        }
        e
    }
}

/// The edge after a set of writes in the given order (None: no write).
pub fn after(writes: &[Write]) -> Option<Edge> {
    let (first, rest) = writes.split_first()?;
    Some(rest.iter().fold(Edge::new(*first), |e, w| e.apply(*w)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    fn w(at: i64, state: State, position: Option<i64>) -> Write {
        Write {
            at,
            state,
            position,
        }
    }

    #[test]
    fn newer_writes_win_and_ties_go_to_the_higher_priority() {
        let add = w(10, State::Normal, None);
        let remove = w(20, State::Removed, None);
        assert_eq!(after(&[add, remove]).unwrap().state, State::Removed);
        assert_eq!(after(&[remove, add]).unwrap().state, State::Removed);
        let late_add = w(30, State::Normal, None);
        assert_eq!(
            after(&[late_add, remove, add]).unwrap().state,
            State::Normal
        );
        for (a, b, winner) in [
            (State::Normal, State::Removed, State::Removed),
            (State::Archived, State::Removed, State::Removed),
            (State::Negative, State::Archived, State::Archived),
            (State::Normal, State::Negative, State::Negative),
        ] {
            assert_eq!(
                after(&[w(5, a, None), w(5, b, None)]).unwrap().state,
                winner
            );
            assert_eq!(
                after(&[w(5, b, None), w(5, a, None)]).unwrap().state,
                winner
            );
        }
    }

    #[test]
    fn positions_come_from_the_newest_write_that_gives_one_or_else_the_first_write() {
        let e = after(&[
            w(10, State::Normal, None),
            w(20, State::Removed, None),
            w(30, State::Normal, None),
        ])
        .unwrap();
        assert_eq!(e.position, 10, "re-adding keeps the position");
        let e = after(&[w(10, State::Normal, None), w(5, State::Removed, None)]).unwrap();
        assert_eq!(
            (e.state, e.position),
            (State::Normal, 10),
            "a late, older removal changes nothing"
        );
        let e = after(&[w(5, State::Removed, None), w(10, State::Normal, None)]).unwrap();
        assert_eq!(
            e.position, 10,
            "the add's time, even when a removal arrived first"
        );
        let e = after(&[w(30, State::Normal, None), w(10, State::Normal, Some(7))]).unwrap();
        assert_eq!(e.position, 7);
        let e = after(&[
            w(10, State::Normal, Some(7)),
            w(30, State::Normal, Some(9)),
            w(20, State::Normal, Some(8)),
        ])
        .unwrap();
        assert_eq!(e.position, 9);
    }

    /// Any permutation, with repetitions, of a set of writes ends in the same edge.
    #[test]
    fn every_order_and_repetition_of_writes_ends_the_same() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        for case in 0..20_000 {
            let n = 1 + rng.below(6);
            let writes: Vec<Write> = (0..n)
                .map(|_| Write {
                    at: rng.below(5) as i64,
                    state: State::ALL[rng.below(4)],
                    position: if rng.below(3) == 0 {
                        Some(rng.below(4) as i64)
                    } else {
                        None
                    },
                })
                .collect();
            let expected = after(&writes).unwrap();
            for _ in 0..8 {
                let mut shuffled = writes.clone();
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, rng.below(i + 1));
                }
                // Repeat some writes, as a retried delivery would.
                for _ in 0..rng.below(3) {
                    let again = shuffled[rng.below(shuffled.len())];
                    shuffled.insert(rng.below(shuffled.len() + 1), again);
                }
                assert_eq!(
                    after(&shuffled).unwrap(),
                    expected,
                    "case {case}: {writes:?} vs {shuffled:?}"
                );
            }
        }
    }

    #[test]
    fn states_round_trip_through_their_codes_and_names() {
        for s in State::ALL {
            assert_eq!(State::from_code(s.code()), Some(s));
            assert_eq!(State::parse(s.name()), Some(s));
        }
        assert_eq!(State::parse("deleted"), None);
    }

    #[test]
    fn writes_at_the_ends_of_time_are_ordered_without_overflow() {
        let at = |at: i64, state: State| Write {
            at,
            state,
            position: None,
        };
        let edge = after(&[
            at(i64::MIN, State::Removed),
            at(i64::MAX, State::Normal),
            at(i64::MIN, State::Normal),
        ])
        .unwrap();
        assert_eq!((edge.state, edge.state_at), (State::Normal, i64::MAX));
        assert_eq!(
            edge.first_at,
            i64::MIN,
            "the earliest add is the edge's first"
        );
        let edge = after(&[at(i64::MAX, State::Normal), at(i64::MIN, State::Archived)]).unwrap();
        assert_eq!(edge.first_at, i64::MAX);
    }
}
