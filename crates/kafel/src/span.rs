//! Where things are in the source: the files read for one compilation and byte spans in
//! them.
//!
//! A file included twice is two entries here, because each inclusion has its own "included
//! from" chain.

/// Index of a file in [`Files`]; 0 is the main file.
pub(crate) type FileId = usize;

/// A byte range in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug)]
pub(crate) struct FileEntry {
    pub name: String,
    pub text: String,
    /// The `#include` file name token that brought this file in.
    pub included_from: Option<Span>,
    line_starts: Vec<usize>,
    /// Whether the text is all ASCII, so characters can be counted as bytes.
    ascii: bool,
}

/// Every file read for one compilation.
#[derive(Debug, Default)]
pub(crate) struct Files {
    entries: Vec<FileEntry>,
}

impl Files {
    pub fn add(&mut self, name: String, text: String, included_from: Option<Span>) -> FileId {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let ascii = text.is_ascii();
        self.entries.push(FileEntry {
            name,
            text,
            included_from,
            line_starts,
            ascii,
        });
        self.entries.len() - 1
    }

    pub fn get(&self, id: FileId) -> &FileEntry {
        &self.entries[id]
    }

    /// How deep `id` is nested in includes: 0 for the main file.
    pub fn depth(&self, id: FileId) -> usize {
        let mut depth = 0;
        let mut cur = self.entries[id].included_from;
        while let Some(span) = cur {
            depth += 1;
            cur = self.entries[span.file].included_from;
        }
        depth
    }

    /// Whether a file called `name` is `id` or one of the files that include it.
    pub fn is_on_include_stack(&self, id: FileId, name: &str) -> bool {
        let mut cur = Some(id);
        while let Some(file) = cur {
            if self.entries[file].name == name {
                return true;
            }
            cur = self.entries[file].included_from.map(|s| s.file);
        }
        false
    }

    /// The text of a span.
    pub fn text(&self, span: Span) -> &str {
        &self.entries[span.file].text[span.start..span.end]
    }
}

impl FileEntry {
    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        (line, self.chars(&self.text[start..offset]) + 1)
    }

    /// The number of characters in a slice of this file's text.
    pub fn chars(&self, slice: &str) -> usize {
        if self.ascii {
            slice.len()
        } else {
            slice.chars().count()
        }
    }

    /// The text of a 1-based line, without its line ending.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        self.text[start..end].trim_end_matches('\r')
    }
}
