//! Ban (+b), exception (+e) and invite-exception (+I) lists: bounded lists of masks, matched
//! casefolded.

use std::time::SystemTime;

use crate::proto::{casemap, mask};

/// Masks per list (+b, +e, +I): MAXLIST in ISUPPORT. A full list refuses new masks (478).
pub(in crate::broker) const MAX_LIST: usize = 100;

/// One mask of a ban, exception or invite-exception list.
pub(in crate::broker) struct ListEntry {
    /// As set (normalized to `nick!user@host`).
    pub mask: String,
    /// Casefolded, for matching.
    pub folded: String,
    pub set_by: String,
    pub set_at: SystemTime,
}

/// What [`MaskList::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::broker) enum Added {
    New,
    Already,
    /// The list holds [`MAX_LIST`] masks: refused (478).
    Full,
}

/// A bounded list of masks (+b, +e or +I).
#[derive(Default)]
pub(in crate::broker) struct MaskList {
    pub entries: Vec<ListEntry>,
}

impl MaskList {
    /// Whether any mask matches `folded_mask` (a client's casefolded `nick!user@host`).
    pub fn matches(&self, folded_mask: &str) -> bool {
        self.entries
            .iter()
            .any(|e| mask::glob_match(e.folded.as_bytes(), folded_mask.as_bytes()))
    }

    /// Adds `mask` (already normalized), unless it is there already or the list is full.
    pub fn add(&mut self, mask: &str, set_by: &str) -> Added {
        let folded = casemap::casefold(mask);
        if self.entries.iter().any(|e| e.folded == folded) {
            return Added::Already;
        }
        if self.entries.len() >= MAX_LIST {
            return Added::Full;
        }
        self.entries.push(ListEntry {
            mask: mask.to_string(),
            folded,
            set_by: set_by.to_string(),
            set_at: SystemTime::now(),
        });
        Added::New
    }

    /// Removes `mask` (compared casefolded); returns the mask as it was set.
    pub fn remove(&mut self, mask: &str) -> Option<String> {
        let folded = casemap::casefold(mask);
        let at = self.entries.iter().position(|e| e.folded == folded)?;
        Some(self.entries.remove(at).mask)
    }
}
