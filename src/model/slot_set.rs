//! `SlotSet`: a set of hash slots as a fixed bitmap, shown and parsed as ranges (`0-4095,5000`).

use std::fmt;

use super::keyslot::SLOTS;

const WORDS: usize = SLOTS as usize / 64;

/// A set of hash slots. Cheap to copy around (2 KiB) and order-preserving when iterated.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotSet {
    bits: Box<[u64; WORDS]>,
}

impl Default for SlotSet {
    fn default() -> Self {
        Self { bits: Box::new([0; WORDS]) }
    }
}

impl SlotSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn all() -> Self {
        Self::from_range(0, SLOTS - 1)
    }

    pub fn from_range(start: u16, end: u16) -> Self {
        let mut s = Self::new();
        s.insert_range(start, end);
        s
    }

    pub fn insert(&mut self, slot: u16) {
        self.bits[usize::from(slot) / 64] |= 1 << (slot % 64);
    }

    pub fn insert_range(&mut self, start: u16, end: u16) {
        for slot in start..=end.min(SLOTS - 1) {
            self.insert(slot);
        }
    }

    pub fn remove(&mut self, slot: u16) {
        self.bits[usize::from(slot) / 64] &= !(1 << (slot % 64));
    }

    pub fn contains(&self, slot: u16) -> bool {
        slot < SLOTS && self.bits[usize::from(slot) / 64] & (1 << (slot % 64)) != 0
    }

    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..SLOTS).filter(|&s| self.contains(s))
    }

    pub fn union_with(&mut self, other: &SlotSet) {
        for (a, b) in self.bits.iter_mut().zip(other.bits.iter()) {
            *a |= b;
        }
    }

    /// Inclusive ranges of consecutive slots, ascending.
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for slot in self.iter() {
            match out.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => out.push((slot, slot)),
            }
        }
        out
    }

    /// Parses `0-4095,5000` (commas or spaces between ranges).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = Self::new();
        for part in text.split([',', ' ']).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let a: u16 = a.trim().parse().map_err(|_| format!("bad slot `{part}`"))?;
            let b: u16 = b.trim().parse().map_err(|_| format!("bad slot `{part}`"))?;
            if a > b || b >= SLOTS {
                return Err(format!("bad slot range `{part}` (slots are 0-16383)"));
            }
            set.insert_range(a, b);
        }
        Ok(set)
    }
}

impl FromIterator<u16> for SlotSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> Self {
        let mut s = Self::new();
        for slot in iter {
            s.insert(slot);
        }
        s
    }
}

impl fmt::Display for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            self.ranges().into_iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
        if parts.is_empty() { f.write_str("-") } else { f.write_str(&parts.join(",")) }
    }
}

/// Serialized as its ranges (`"0-4095,5000"`): compact and readable in a journal.
impl serde::Serialize for SlotSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for SlotSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "-" { Ok(SlotSet::new()) } else { SlotSet::parse(&text).map_err(serde::de::Error::custom) }
    }
}

impl fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip() {
        let s = SlotSet::parse("0-10,12,100-101").unwrap();
        assert_eq!(s.len(), 14);
        assert_eq!(s.to_string(), "0-10,12,100-101");
        assert_eq!(s.ranges(), vec![(0, 10), (12, 12), (100, 101)]);
        assert!(SlotSet::parse("5-3").is_err());
        assert!(SlotSet::parse("16384").is_err());
        assert_eq!(SlotSet::all().len(), 16384);
        assert_eq!(SlotSet::new().to_string(), "-");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"0-10,12,100-101\"");
        assert_eq!(serde_json::from_str::<SlotSet>(&json).unwrap(), s);
        assert!(serde_json::from_str::<SlotSet>("\"-\"").unwrap().is_empty());
    }
}
