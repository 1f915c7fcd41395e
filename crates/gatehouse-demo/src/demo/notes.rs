//! The demo server's note book: titled text notes kept in memory for the life of the process.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};

/// The longest note title accepted.
pub(crate) const MAX_TITLE_LEN: usize = 64;

/// The longest note body accepted, in bytes.
pub(crate) const MAX_BODY_LEN: usize = 64 * 1024;

/// The most notes one process keeps, so a loop calling `add_note` cannot exhaust memory.
pub(crate) const MAX_NOTES: usize = 1_000;

/// The title taken by the readme resource, `demo://notes/readme`, which no note may use.
pub(crate) const README_TITLE: &str = "readme";

/// Why a note could not be added or deleted; the message is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoteError {
    InvalidTitle,
    ReservedTitle,
    BodyTooLong,
    TitleTaken(String),
    NotFound(String),
    BookFull,
}

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidTitle => write!(
                f,
                "a title is 1 to {MAX_TITLE_LEN} characters from A-Z, a-z, 0-9, '-', '_' and '.'"
            ),
            Self::ReservedTitle => write!(f, "the title {README_TITLE:?} is taken by the readme"),
            Self::BodyTooLong => write!(f, "a note body is at most {MAX_BODY_LEN} bytes"),
            Self::TitleTaken(title) => {
                write!(f, "a note titled {title:?} already exists; delete it first")
            }
            Self::NotFound(title) => write!(f, "there is no note titled {title:?}"),
            Self::BookFull => write!(f, "the note book is full ({MAX_NOTES} notes)"),
        }
    }
}

/// Notes by title, shared by every session and request of one process.
#[derive(Debug, Clone, Default)]
pub(crate) struct NoteBook {
    notes: Arc<Mutex<BTreeMap<String, String>>>,
}

impl NoteBook {
    /// Titles and bodies in title order.
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|(title, body)| (title.clone(), body.clone()))
            .collect()
    }

    pub(crate) fn titles(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub(crate) fn get(&self, title: &str) -> Option<String> {
        self.lock().get(title).cloned()
    }

    pub(crate) fn add(&self, title: &str, body: &str) -> Result<(), NoteError> {
        if !is_valid_title(title) {
            return Err(NoteError::InvalidTitle);
        }
        if title == README_TITLE {
            return Err(NoteError::ReservedTitle);
        }
        if body.len() > MAX_BODY_LEN {
            return Err(NoteError::BodyTooLong);
        }
        let mut notes = self.lock();
        if notes.contains_key(title) {
            return Err(NoteError::TitleTaken(title.to_owned()));
        }
        if notes.len() >= MAX_NOTES {
            return Err(NoteError::BookFull);
        }
        notes.insert(title.to_owned(), body.to_owned());
        Ok(())
    }

    pub(crate) fn delete(&self, title: &str) -> Result<(), NoteError> {
        match self.lock().remove(title) {
            Some(_) => Ok(()),
            None => Err(NoteError::NotFound(title.to_owned())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        // A panic while holding the lock cannot leave the map half-written (every
        // operation is a single insert or remove), so a poisoned lock is still usable.
        self.notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Titles are restricted so that `demo://notes/{title}` needs no percent-encoding.
pub(crate) fn is_valid_title(title: &str) -> bool {
    (1..=MAX_TITLE_LEN).contains(&title.len())
        && title
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_added_listed_and_deleted() {
        let book = NoteBook::default();
        assert_eq!(book.add("shopping", "milk"), Ok(()));
        assert_eq!(book.add("a-first", ""), Ok(()));
        assert_eq!(book.add(README_TITLE, "x"), Err(NoteError::ReservedTitle));
        assert_eq!(
            book.add("shopping", "eggs"),
            Err(NoteError::TitleTaken("shopping".into()))
        );
        assert_eq!(book.titles(), ["a-first", "shopping"]);
        assert_eq!(book.get("shopping").as_deref(), Some("milk"));
        assert_eq!(book.delete("shopping"), Ok(()));
        assert_eq!(
            book.delete("shopping"),
            Err(NoteError::NotFound("shopping".into()))
        );
        assert_eq!(book.titles(), ["a-first"]);
    }

    #[test]
    fn titles_are_checked() {
        for bad in [
            "",
            "has space",
            "slash/y",
            "ü",
            &"x".repeat(MAX_TITLE_LEN + 1),
        ] {
            assert!(!is_valid_title(bad), "{bad:?} should be refused");
        }
        for good in ["a", "Note_1.txt", "x-y", &"x".repeat(MAX_TITLE_LEN)] {
            assert!(is_valid_title(good), "{good:?} should be accepted");
        }
    }
}
