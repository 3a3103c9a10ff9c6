//! The compact id index: about 40 bytes per row, sorted once to find duplicates.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::parse::{format_account, Columns, IdKey};
use super::problem::{Collector, Report};

/// One row of the manifest in the index: 40 bytes, so a million rows take
/// 40 MB. The id is kept whole (not a hash or a prefix of it) so that two
/// distinct certificates can never be mistaken for one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) id: [u8; 32],
    /// Physical line of the row.
    pub(super) line: u32,
    /// Index into [`Index::targets`]; the top bit marks a `0x`-prefixed id.
    pub(super) target: u32,
}

pub(super) const PREFIXED_BIT: u32 = 1 << 31;

impl Entry {
    pub(super) fn new(key: &IdKey, target: u32, line: u32) -> Entry {
        Entry {
            id: key.bytes,
            line,
            target: target | if key.prefixed { PREFIXED_BIT } else { 0 },
        }
    }

    pub(super) fn key(&self) -> IdKey {
        IdKey {
            bytes: self.id,
            prefixed: self.target & PREFIXED_BIT != 0,
        }
    }

    pub(super) fn target_index(&self) -> usize {
        (self.target & !PREFIXED_BIT) as usize
    }

    pub(super) fn is_prefixed(&self) -> bool {
        self.target & PREFIXED_BIT != 0
    }

    /// Orders by id (the `0x` form after the plain one).
    pub(super) fn cmp_id(&self, other: &Entry) -> Ordering {
        self.id
            .cmp(&other.id)
            .then(self.is_prefixed().cmp(&other.is_prefixed()))
    }

    pub(super) fn cmp_key(&self, key: &IdKey) -> Ordering {
        self.id
            .cmp(&key.bytes)
            .then((self.target & PREFIXED_BIT != 0).cmp(&key.prefixed))
    }
}

/// Interns regions and (account, region) targets: a manifest has few distinct
/// ones, and an index entry then needs only a 31-bit target number.
#[derive(Default)]
pub(super) struct Interner {
    pub(super) regions: Vec<Option<Box<str>>>,
    pub(super) region_ids: HashMap<Box<str>, u32>,
    pub(super) default_region: Option<u32>,
    pub(super) last_region: Option<u32>,
    pub(super) targets: Vec<(u64, u32)>,
    pub(super) target_ids: HashMap<(u64, u32), u32>,
    pub(super) last_target: Option<u32>,
}

impl Interner {
    pub(super) fn region(&mut self, region: Option<&str>) -> u32 {
        // Most rows repeat the previous row's region: check it first.
        if let Some(last) = self.last_region {
            if self.regions[last as usize].as_deref() == region {
                return last;
            }
        }
        let id = match region {
            None => *self.default_region.get_or_insert_with(|| {
                self.regions.push(None);
                (self.regions.len() - 1) as u32
            }),
            Some(name) => match self.region_ids.get(name) {
                Some(&id) => id,
                None => {
                    let id = self.regions.len() as u32;
                    self.regions.push(Some(name.into()));
                    self.region_ids.insert(name.into(), id);
                    id
                }
            },
        };
        self.last_region = Some(id);
        id
    }

    pub(super) fn target(&mut self, account: u64, region: u32) -> Option<u32> {
        if let Some(last) = self.last_target {
            if self.targets[last as usize] == (account, region) {
                return Some(last);
            }
        }
        let id = match self.target_ids.get(&(account, region)) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.targets.len())
                    .ok()
                    .filter(|&id| id < PREFIXED_BIT)?;
                self.targets.push((account, region));
                self.target_ids.insert((account, region), id);
                id
            }
        };
        self.last_target = Some(id);
        Some(id)
    }
}

/// The ids of the manifest, sorted, with the tables their targets refer to.
pub(super) struct Index {
    /// Sorted by (id, line); after [`Index::dedup`], one entry per id (its
    /// first line).
    pub(super) entries: Vec<Entry>,
    /// (account, index into `regions`), in order of first appearance.
    pub(super) targets: Vec<(u64, u32)>,
    /// Distinct regions in order of first appearance.
    pub(super) regions: Vec<Option<Box<str>>>,
}

impl Index {
    pub(super) fn build(mut entries: Vec<Entry>, interner: Interner) -> Index {
        // In place and without extra memory; lines are unique, so the order
        // is total and stability does not matter.
        entries.sort_unstable_by(|a, b| a.cmp_id(b).then(a.line.cmp(&b.line)));
        Index {
            entries,
            targets: interner.targets,
            regions: interner.regions,
        }
    }

    /// Reports each later occurrence of an id: a warning when it has the same
    /// target as the first, an error otherwise.
    pub(super) fn find_duplicates(
        &self,
        columns: &Columns,
        problems: &mut Collector,
        warnings: &mut Collector,
    ) {
        let (Some(id_column), Some(account_column)) = (columns.id, columns.account) else {
            return;
        };
        for group in self.entries.chunk_by(|a, b| a.cmp_id(b) == Ordering::Equal) {
            let first = &group[0];
            for later in &group[1..] {
                let line = u64::from(later.line);
                let id = || first.key().to_hex();
                if later.target_index() == first.target_index() {
                    warnings.report(line, Some(columns.column(id_column)), || {
                        format!(
                            "certificate_id {} repeats line {} with the same target: counted once",
                            id(),
                            first.line
                        )
                    });
                    continue;
                }
                let (first_account, first_region) = self.targets[first.target_index()];
                let (later_account, later_region) = self.targets[later.target_index()];
                if first_account != later_account {
                    let (index, name) = columns.column(account_column);
                    problems.report(line, Some((index, name)), || {
                        format!(
                            "certificate_id {} is listed at line {} for {name} {}, here for {}: a certificate can go to one account only",
                            id(),
                            first.line,
                            format_account(first_account),
                            format_account(later_account)
                        )
                    });
                } else {
                    let region_name = |region: u32| {
                        self.regions[region as usize]
                            .as_deref()
                            .unwrap_or("(default)")
                            .to_owned()
                    };
                    let column = columns.region.map(|index| columns.column(index));
                    problems.report(line, column, || {
                        format!(
                            "certificate_id {} is listed at line {} with region {}, here with region {}: a certificate is in one region only",
                            id(),
                            first.line,
                            region_name(first_region),
                            region_name(later_region)
                        )
                    });
                }
            }
        }
    }

    /// Keeps the first occurrence of each id; returns the lines of the others,
    /// sorted.
    pub(super) fn dedup(&mut self) -> Vec<u32> {
        let mut removed = Vec::new();
        self.entries.dedup_by(|later, first| {
            let same = later.cmp_id(first) == Ordering::Equal;
            if same {
                removed.push(later.line);
            }
            same
        });
        removed.sort_unstable();
        removed
    }

    pub(super) fn find(&self, key: &IdKey) -> Option<&Entry> {
        self.entries
            .binary_search_by(|entry| entry.cmp_key(key))
            .ok()
            .map(|position| &self.entries[position])
    }
}
