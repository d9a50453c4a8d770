//! The loader's only window on the machine: files and host names.
//!
//! Reading goes through [`Files`] so that tests can load a configuration, its includes,
//! policies, `/etc/services`, the servers it names and the host names it uses from
//! memory with [`MemFiles`] (no test ever asks a real name server), while the daemon uses
//! [`OsFiles`].

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// An entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub is_file: bool,
}

/// Read-only access to files.
pub trait Files {
    /// The whole content of a regular file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The entries of a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    /// True if the path is a regular file with an execute bit set.
    fn is_executable(&self, path: &Path) -> bool;
    /// True if the path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Up to `len` bytes from the start of a file (enough for a header).
    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        let mut bytes = self.read(path)?;
        bytes.truncate(len);
        Ok(bytes)
    }
    /// The addresses of a host name, as the system's resolver gives them.
    fn resolve_host(&self, name: &str) -> io::Result<Vec<IpAddr>>;
}

/// The most [`OsFiles::read`] reads of one file. Configurations, policies and
/// `/etc/services` are far smaller; the bound is there because a path can name something
/// endless (`/dev/zero`, or a symbolic link to it), which would otherwise be read until
/// memory runs out — and the daemon reads its configuration again on every SIGHUP.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFiles;

impl Files for OsFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        // One byte more than allowed tells a file at the limit from one beyond it.
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("longer than {} MiB", MAX_FILE_BYTES >> 20),
            ));
        }
        Ok(bytes)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            // Follow symbolic links, as xinetd's stat() does.
            let is_file = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file());
            let name = entry.file_name().to_string_lossy().into_owned();
            entries.push(DirEntry { name, is_file });
        }
        Ok(entries)
    }

    fn is_executable(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut head = Vec::with_capacity(len);
        let file = std::fs::File::open(path)?;
        file.take(len as u64).read_to_end(&mut head)?;
        Ok(head)
    }

    fn resolve_host(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        Ok((name, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    }
}

/// Files held in memory, for tests and fuzzing. Directories exist implicitly wherever a
/// file is stored below them.
/// Host names resolve only from the table given with [`MemFiles::add_host`], which
/// starts with `localhost`.
#[derive(Debug, Clone)]
pub struct MemFiles {
    files: BTreeMap<PathBuf, (Vec<u8>, bool)>,
    hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl Default for MemFiles {
    fn default() -> Self {
        let localhost = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let hosts = BTreeMap::from([("localhost".to_owned(), localhost)]);
        MemFiles {
            files: BTreeMap::new(),
            hosts,
        }
    }
}

impl MemFiles {
    pub fn new() -> Self {
        MemFiles::default()
    }

    /// Makes `name` resolve to `addresses`.
    pub fn add_host(&mut self, name: &str, addresses: &[IpAddr]) -> &mut Self {
        self.hosts.insert(name.to_owned(), addresses.to_vec());
        self
    }

    /// Stores a regular, non-executable file.
    pub fn add(&mut self, path: impl Into<PathBuf>, content: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(path.into(), (content.into(), false));
        self
    }

    /// Stores an executable file.
    pub fn add_executable(
        &mut self,
        path: impl Into<PathBuf>,
        content: impl Into<Vec<u8>>,
    ) -> &mut Self {
        self.files.insert(path.into(), (content.into(), true));
        self
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.files.keys().any(|p| p.starts_with(path) && p != path)
    }
}

impl Files for MemFiles {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.files.get(path) {
            Some((content, _)) => Ok(content.clone()),
            None if self.is_dir(path) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        if !self.is_dir(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let mut entries: Vec<DirEntry> = Vec::new();
        for file in self.files.keys() {
            let Ok(rest) = file.strip_prefix(path) else {
                continue;
            };
            let mut parts = rest.components();
            let Some(first) = parts.next() else { continue };
            let name = first.as_os_str().to_string_lossy().into_owned();
            let is_file = parts.next().is_none();
            if !entries.iter().any(|e| e.name == name) {
                entries.push(DirEntry { name, is_file });
            }
        }
        Ok(entries)
    }

    fn is_executable(&self, path: &Path) -> bool {
        self.files.get(path).is_some_and(|(_, exec)| *exec)
    }

    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path) || self.is_dir(path)
    }

    fn resolve_host(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        match self.hosts.get(name) {
            Some(addresses) => Ok(addresses.clone()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "unknown host")),
        }
    }
}
