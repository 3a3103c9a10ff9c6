//! The compact id index: 20 bytes per row, sorted once to find duplicates.
//!
//! Ten million rows must validate in a quarter of a gigabyte, less than their ids alone take
//! (32 bytes each), so an entry keeps a 96-bit keyed digest of the id instead (two SipHash
//! values under keys drawn at random per process). Rows with the same digest are only
//! candidates: their ids are read again from the file ([`Index::candidate_lines`]) and
//! compared whole, so duplicate detection never mistakes two certificates for one. A lookup
//! ([`Index::find`]) compares digests only; that a certificate not in the manifest shares
//! one with a listed certificate is a chance below 10^-21 per lookup at ten million rows,
//! and cannot be provoked without the process's keys.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::parse::{format_account, Columns, IdKey};
use super::problem::{Collector, Report};

/// 96 bits of keyed digest of an id.
pub(super) type Digest = [u32; 3];

/// One row of the manifest in the index: 20 bytes, so ten million rows take 200 MB.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) digest: Digest,
    /// Physical line of the row.
    pub(super) line: u32,
    /// Index into [`Index::targets`].
    pub(super) target: u32,
}

impl Entry {
    pub(super) fn new(digest: Digest, target: u32, line: u32) -> Entry {
        Entry {
            digest,
            line,
            target,
        }
    }

    pub(super) fn target_index(&self) -> usize {
        self.target as usize
    }
}

/// Digests ids under keys of its own.
pub(super) struct Digester {
    high: std::collections::hash_map::RandomState,
    low: std::collections::hash_map::RandomState,
}

impl Digester {
    pub(super) fn new() -> Digester {
        Digester {
            high: Default::default(),
            low: Default::default(),
        }
    }

    pub(super) fn digest(&self, key: &IdKey) -> Digest {
        let high = self.high.hash_one(key);
        let low = self.low.hash_one(key);
        [(high >> 32) as u32, high as u32, (low >> 32) as u32]
    }
}

/// Interns regions and (account, region) targets: a manifest has few distinct
/// ones, and an index entry then needs only a target number.
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

/// Targets an index can hold (more is refused: split the manifest).
const MAX_TARGETS: u32 = 1 << 31;

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
                    .filter(|&id| id < MAX_TARGETS)?;
                self.targets.push((account, region));
                self.target_ids.insert((account, region), id);
                id
            }
        };
        self.last_target = Some(id);
        Some(id)
    }
}

/// The ids of the rows that share a digest with another row, read again from the file.
pub(super) type CandidateKeys = HashMap<u32, IdKey>;

/// The digests of the manifest's ids, sorted, with the tables their targets refer to.
pub(super) struct Index {
    /// Sorted by (digest, line); after [`Index::dedup`], one entry per id (its
    /// first line).
    pub(super) entries: Vec<Entry>,
    /// (account, index into `regions`), in order of first appearance.
    pub(super) targets: Vec<(u64, u32)>,
    /// Distinct regions in order of first appearance.
    pub(super) regions: Vec<Option<Box<str>>>,
    digester: Digester,
    /// `directory[b]..directory[b + 1]` is the range of `entries` whose digests start with
    /// the `bits` bits `b` (digests are uniform, so a lookup reads one small range).
    directory: Vec<u32>,
    bits: u32,
}

/// The directory has one entry per this many index entries, about.
const ENTRIES_PER_BUCKET: usize = 4;

impl Index {
    pub(super) fn build(mut entries: Vec<Entry>, interner: Interner, digester: Digester) -> Index {
        // In place and without extra memory; lines are unique, so the order
        // is total and stability does not matter.
        entries.sort_unstable_by(|a, b| a.digest.cmp(&b.digest).then(a.line.cmp(&b.line)));
        let mut index = Index {
            entries,
            targets: interner.targets,
            regions: interner.regions,
            digester,
            directory: Vec::new(),
            bits: 0,
        };
        index.build_directory();
        index
    }

    fn build_directory(&mut self) {
        let wanted = (self.entries.len() / ENTRIES_PER_BUCKET).max(1);
        self.bits = (usize::BITS - 1 - wanted.leading_zeros()).min(24);
        self.directory.clear();
        self.directory.reserve_exact((1 << self.bits) + 1);
        let mut at = 0usize;
        for bucket in 0..1u32 << self.bits {
            while at < self.entries.len() && self.lead(&self.entries[at].digest) < bucket {
                at += 1;
            }
            self.directory.push(at as u32);
        }
        self.directory.push(self.entries.len() as u32);
    }

    fn lead(&self, digest: &Digest) -> u32 {
        if self.bits == 0 {
            0
        } else {
            digest[0] >> (32 - self.bits)
        }
    }

    fn groups(&self) -> impl Iterator<Item = &[Entry]> {
        self.entries
            .chunk_by(|a, b| a.digest == b.digest)
            .filter(|group| group.len() > 1)
    }

    /// The lines, sorted, of the rows whose id must be read again: those that share their
    /// digest with another row (repeated ids, almost always).
    pub(super) fn candidate_lines(&self) -> Vec<u32> {
        let mut lines: Vec<u32> = self.groups().flatten().map(|e| e.line).collect();
        lines.sort_unstable();
        lines
    }

    /// The rows of one digest group by id, each in line order: the first is the row that
    /// counts, the others repeat it.
    fn same_ids<'a>(group: &'a [Entry], keys: &CandidateKeys) -> Vec<Vec<&'a Entry>> {
        let mut by_id: Vec<(IdKey, Vec<&Entry>)> = Vec::new();
        for entry in group {
            let key = keys[&entry.line];
            match by_id.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(entry),
                None => by_id.push((key, vec![entry])),
            }
        }
        by_id.into_iter().map(|(_, rows)| rows).collect()
    }

    /// Reports each later occurrence of an id: a warning when it has the same
    /// target as the first, an error otherwise. `keys` holds the ids of
    /// [`Index::candidate_lines`].
    pub(super) fn find_duplicates(
        &self,
        columns: &Columns,
        keys: &CandidateKeys,
        problems: &mut Collector,
        warnings: &mut Collector,
    ) {
        let (Some(id_column), Some(account_column)) = (columns.id, columns.account) else {
            return;
        };
        for group in self.groups() {
            for rows in Self::same_ids(group, keys) {
                let first = rows[0];
                for later in &rows[1..] {
                    let line = u64::from(later.line);
                    let id = || keys[&first.line].to_hex();
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
    }

    /// Keeps the first occurrence of each id; returns the lines of the others,
    /// sorted.
    pub(super) fn dedup(&mut self, keys: &CandidateKeys) -> Vec<u32> {
        let mut removed: Vec<u32> = self
            .groups()
            .flat_map(|group| Self::same_ids(group, keys))
            .flat_map(|rows| rows.into_iter().skip(1).map(|e| e.line))
            .collect();
        removed.sort_unstable();
        if !removed.is_empty() {
            self.entries
                .retain(|e| removed.binary_search(&e.line).is_err());
            self.build_directory();
        }
        removed
    }

    pub(super) fn find(&self, key: &IdKey) -> Option<&Entry> {
        let digest = self.digester.digest(key);
        let bucket = self.lead(&digest) as usize;
        let range = self.directory[bucket] as usize..self.directory[bucket + 1] as usize;
        let start = range.start;
        self.entries[range]
            .binary_search_by(|entry| entry.digest.cmp(&digest))
            .ok()
            .map(|position| &self.entries[start + position])
    }
}
