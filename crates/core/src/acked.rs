//! The set of finished (acked, dead-lettered or skipped) offsets of one
//! partition of a subscription: a floor below which everything is finished,
//! and merged half-open ranges above it. Its size is one range per gap of
//! unfinished offsets, never the number of offsets.

use std::collections::BTreeMap;

/// Finished offsets: everything below `floor`, plus merged ranges above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckedSet {
    floor: u64,
    /// start -> end (exclusive), disjoint, not touching, all above `floor`.
    ranges: BTreeMap<u64, u64>,
}

impl AckedSet {
    /// Everything below `floor` is finished, nothing above.
    pub fn new(floor: u64) -> AckedSet {
        AckedSet {
            floor,
            ranges: BTreeMap::new(),
        }
    }

    /// Rebuilds a set from its floor and ranges (as [`AckedSet::ranges`]
    /// lists them); overlapping or unsorted ranges are merged.
    pub fn from_parts(floor: u64, ranges: &[(u64, u64)]) -> AckedSet {
        let mut set = AckedSet::new(floor);
        for &(start, end) in ranges {
            set.insert(start, end);
        }
        set
    }

    /// Every offset below is finished.
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// Finished ranges above the floor, sorted.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        self.ranges.iter().map(|(&s, &e)| (s, e)).collect()
    }

    /// Number of ranges above the floor.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    pub fn contains(&self, offset: u64) -> bool {
        offset < self.floor
            || self
                .ranges
                .range(..=offset)
                .next_back()
                .is_some_and(|(_, &e)| e > offset)
    }

    /// The first offset at or after `offset` that is not finished.
    pub fn next_unfinished(&self, offset: u64) -> u64 {
        let cursor = offset.max(self.floor);
        match self.ranges.range(..=cursor).next_back() {
            Some((_, &end)) if end > cursor => end,
            _ => cursor,
        }
    }

    /// Finished offsets in `start..end`.
    pub fn count_in(&self, start: u64, end: u64) -> u64 {
        let below = self.floor.clamp(start, end.max(start)) - start;
        let above: u64 = self
            .ranges
            .iter()
            .map(|(&s, &e)| e.min(end).saturating_sub(s.max(start)))
            .sum();
        below + above
    }

    /// Adds `start..end`, merging ranges and advancing the floor. Tolerates
    /// overlap and empty ranges.
    pub fn insert(&mut self, start: u64, end: u64) {
        let mut start = start.max(self.floor);
        let mut end = end;
        if start >= end {
            return;
        }
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.ranges.remove(&s);
            }
        }
        // Swallow every range that starts inside or right after the new one.
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            end = end.max(e);
            self.ranges.remove(&s);
        }
        if start == self.floor {
            self.floor = end;
        } else {
            self.ranges.insert(start, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_the_floor_advances() {
        let mut set = AckedSet::new(10);
        set.insert(12, 13);
        set.insert(14, 16);
        assert_eq!(set.ranges(), vec![(12, 13), (14, 16)]);
        set.insert(13, 14);
        assert_eq!(set.ranges(), vec![(12, 16)]);
        assert_eq!(set.next_unfinished(12), 16);
        assert_eq!(set.next_unfinished(3), 10);
        set.insert(10, 12);
        assert_eq!(set.floor(), 16);
        assert_eq!(set.range_count(), 0);
        set.insert(5, 8);
        assert_eq!(set.floor(), 16, "below the floor is already finished");
        assert!(set.contains(15) && !set.contains(16));
    }

    #[test]
    fn count_in_counts_floor_and_ranges() {
        let set = AckedSet::from_parts(5, &[(8, 10), (20, 30)]);
        assert_eq!(set.count_in(0, 100), 5 + 2 + 10);
        assert_eq!(set.count_in(9, 25), 1 + 5);
        assert_eq!(set.count_in(40, 50), 0);
    }
}
