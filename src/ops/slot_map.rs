//! The slot map as text: one bar per master across the 16,384 slots, with its slots, keys and
//! memory beside it. Pure: the caller decides whether to colour (a terminal, no `NO_COLOR`).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::bytes::human_bytes;
use crate::model::{SLOTS, SlotSet};

/// Cells per bar: 256 slots each, narrow enough for an 80-column terminal beside an address.
pub const CELLS: usize = 64;

/// A cell some of whose slots the master owns, from under an eighth to over seven eighths:
/// the height says how many, so a bar still reads at a glance where ranges are ragged.
const PARTIAL: [char; 7] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇'];
const FULL: char = '█';
const NONE: char = '·';

/// One colour per master, cycled; red is left out (it reads as an error).
const COLOURS: [u8; 5] = [32, 34, 33, 35, 36];

/// One master's line.
pub struct Row<'a> {
    pub addr: &'a str,
    pub slots: &'a SlotSet,
    pub keys: Option<u64>,
    pub memory: Option<u64>,
}

/// The bar of one slot set, `cells` characters wide.
pub fn bar(slots: &SlotSet, cells: usize) -> String {
    let total = usize::from(SLOTS);
    (0..cells)
        .map(|i| {
            let (start, end) = (i * total / cells, (i + 1) * total / cells);
            let owned = (start..end).filter(|&s| slots.contains(u16::try_from(s).unwrap_or(u16::MAX))).count();
            match owned {
                0 => NONE,
                n if n == end - start => FULL,
                n => PARTIAL[(n * PARTIAL.len() / (end - start)).min(PARTIAL.len() - 1)],
            }
        })
        .collect()
}

/// The map: a legend, then one line per master (`colour`: ANSI colours, one per master).
pub fn render(rows: &[Row], colour: bool) -> String {
    let width = rows.iter().map(|r| r.addr.chars().count()).max().unwrap_or(0);
    let mut out = format!(
        "slot map: {CELLS} cells of {} slots; {FULL} all owned, {}-{} some, {NONE} none\n",
        usize::from(SLOTS) / CELLS,
        PARTIAL[0],
        PARTIAL[PARTIAL.len() - 1]
    );
    for (i, r) in rows.iter().enumerate() {
        let bar = bar(r.slots, CELLS);
        let bar = if colour { paint(&bar, COLOURS[i % COLOURS.len()]) } else { bar };
        let _ = writeln!(
            out,
            "{:<width$} {bar} {:>5} slots {:>10} keys {:>10}",
            r.addr,
            r.slots.len(),
            r.keys.map_or_else(|| "?".into(), |k| k.to_string()),
            r.memory.map_or_else(|| "?".into(), human_bytes),
        );
    }
    out
}

/// Cells per bar when two stand side by side (before and after): 512 slots each.
pub const PAIR_CELLS: usize = 32;

/// One master's slots before and after a change (`None`: not a master then).
pub struct Pair<'a> {
    pub addr: &'a str,
    pub before: Option<&'a SlotSet>,
    pub after: Option<&'a SlotSet>,
}

/// Before and after, side by side, one line per node that is a master in either; the same
/// colour for a node on both sides.
pub fn render_pair(rows: &[Pair], colour: bool) -> String {
    let width = rows.iter().map(|r| r.addr.chars().count()).max().unwrap_or(0);
    let empty = SlotSet::new();
    let mut out = format!(
        "slot map before → after: {PAIR_CELLS} cells of {} slots; {FULL} all owned, {}-{} some, {NONE} none\n",
        usize::from(SLOTS) / PAIR_CELLS,
        PARTIAL[0],
        PARTIAL[PARTIAL.len() - 1]
    );
    for (i, r) in rows.iter().enumerate() {
        let side = |slots: Option<&SlotSet>| {
            let bar = bar(slots.unwrap_or(&empty), PAIR_CELLS);
            let bar = if colour { paint(&bar, COLOURS[i % COLOURS.len()]) } else { bar };
            (bar, slots.map_or_else(|| "-".to_string(), |s| s.len().to_string()))
        };
        let ((b, nb), (a, na)) = (side(r.before), side(r.after));
        let _ = writeln!(out, "{:<width$} {b} {nb:>5} → {a} {na:>5}", r.addr);
    }
    out
}

/// Before and after from each master's slots by address (`render_pair`): the nodes that were
/// masters with slots first, then the new ones; `None` when no slot changes owner.
pub fn before_after(
    before: &BTreeMap<String, SlotSet>,
    after: &BTreeMap<String, SlotSet>,
    colour: bool,
) -> Option<String> {
    let owning = |m: &BTreeMap<String, SlotSet>| -> BTreeMap<String, SlotSet> {
        m.iter().filter(|(_, s)| !s.is_empty()).map(|(a, s)| (a.clone(), s.clone())).collect()
    };
    let (b, a) = (owning(before), owning(after));
    if b == a {
        return None;
    }
    let mut addrs: Vec<&String> = b.keys().chain(a.keys()).collect();
    addrs.sort_by_key(|addr| (!b.contains_key(*addr), *addr));
    addrs.dedup();
    let rows: Vec<Pair> = addrs.iter().map(|addr| Pair { addr, before: b.get(*addr), after: a.get(*addr) }).collect();
    Some(render_pair(&rows, colour))
}

/// Colours the owned cells; the empty ones stay plain, so the gaps stand out.
fn paint(bar: &str, colour: u8) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in bar.chars() {
        let owned = c != NONE;
        if owned && !inside {
            let _ = write!(out, "\x1b[{colour}m");
        } else if !owned && inside {
            out.push_str("\x1b[0m");
        }
        inside = owned;
        out.push(c);
    }
    if inside {
        out.push_str("\x1b[0m");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_full_partial_or_empty_by_the_slots_owned() {
        let quarter = SlotSet::from_range(0, 4095);
        assert_eq!(bar(&quarter, CELLS), format!("{}{}", "█".repeat(16), "·".repeat(48)));
        assert_eq!(bar(&SlotSet::all(), 4), "████");
        assert_eq!(bar(&SlotSet::new(), 4), "····");
        // Half of the first cell of 256, one slot of the second, all but one of the third.
        let mut ragged = SlotSet::from_range(0, 127);
        ragged.insert(300);
        ragged.insert_range(512, 766);
        assert_eq!(&bar(&ragged, CELLS).chars().take(4).collect::<String>(), "▄▁▇·");
    }

    #[test]
    fn rows_carry_slots_keys_and_memory_and_colour_only_when_asked() {
        let (a, b) = (SlotSet::from_range(0, 8191), SlotSet::from_range(8192, 16383));
        let rows = [
            Row { addr: "127.0.0.1:6391", slots: &a, keys: Some(1500), memory: Some(2 * 1024 * 1024) },
            Row { addr: "127.0.0.1:16392", slots: &b, keys: None, memory: None },
        ];
        let plain = render(&rows, false);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines.len(), 3, "{plain}");
        assert!(lines[0].starts_with("slot map: 64 cells of 256 slots"), "{plain}");
        assert_eq!(
            lines[1],
            format!("127.0.0.1:6391  {}{}  8192 slots       1500 keys    2.0 MiB", "█".repeat(32), "·".repeat(32))
        );
        assert!(lines[2].ends_with(" 8192 slots          ? keys          ?"), "{plain}");
        assert!(!plain.contains('\x1b'));
        let coloured = render(&rows, true);
        assert!(coloured.contains(&format!("\x1b[32m{}\x1b[0m", "█".repeat(32))), "{coloured}");
        assert!(coloured.contains(&format!("{}\x1b[34m{}\x1b[0m", "·".repeat(32), "█".repeat(32))), "{coloured}");
    }

    #[test]
    fn before_and_after_stand_side_by_side() {
        let (half, all) = (SlotSet::from_range(0, 8191), SlotSet::all());
        let rows = [
            Pair { addr: "127.0.0.1:6391", before: Some(&half), after: Some(&all) },
            Pair { addr: "127.0.0.1:6397", before: Some(&half), after: None },
        ];
        let text = render_pair(&rows, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("slot map before → after: 32 cells of 512 slots"), "{text}");
        assert_eq!(
            lines[1],
            format!("127.0.0.1:6391 {}{}  8192 → {} 16384", "█".repeat(16), "·".repeat(16), "█".repeat(32))
        );
        assert_eq!(
            lines[2],
            format!("127.0.0.1:6397 {}{}  8192 → {}     -", "█".repeat(16), "·".repeat(16), "·".repeat(32))
        );
    }
}
