//! An append-only vector in chunks of a fixed length, for the run's message records (one per
//! message, ten million at scale): as one vector they were the largest allocation of a run,
//! hundreds of MB that an allocator may serve straight from the OS, outside its arenas and
//! their huge pages (with mimalloc 3.6 it was the one region of a 1 M-user run on 4 KiB pages,
//! and the ledger thread that folds into it missed the TLB). A chunk is an ordinary
//! allocation; a push never moves the items before it, and no memory is touched for items
//! not pushed.

/// Items per chunk (1.5 MiB of 48-byte message records).
const CHUNK: usize = 1 << 15;

#[derive(Clone, Debug)]
pub struct Chunked<T> {
    /// Every chunk but the last is full.
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub fn push(&mut self, item: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let full_chunks = self.chunks.len() - 1;
        let last = self.chunks.last_mut();
        let last = last.expect("a chunk exists once one was pushed for this length");
        last.push(item);
        self.len += 1;
        assert!(
            last.len() <= CHUNK && self.len == full_chunks * CHUNK + last.len(),
            "every chunk but the last is full"
        );
    }

    /// The items in the order they were pushed.
    pub fn iter(&self) -> std::iter::Flatten<std::slice::Iter<'_, Vec<T>>> {
        self.chunks.iter().flatten()
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}
