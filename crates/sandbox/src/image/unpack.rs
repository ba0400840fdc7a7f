//! Unpacks image layers (tar, optionally gzip) into a root filesystem without ever leaving it.
//!
//! Every path is resolved component by component from a directory file descriptor of the
//! root with `openat(O_NOFOLLOW | O_DIRECTORY)`: a path with `..` or an absolute path is
//! refused, and a parent component that is a symlink (planted by an earlier entry or layer)
//! is refused, so no write, link or removal can land outside the root. Files are created
//! with `O_CREAT | O_EXCL | O_NOFOLLOW`. Device nodes, fifos and sparse files are refused;
//! setuid, setgid and sticky bits are dropped; extended attributes (file capabilities) are
//! not applied; everything belongs to the unpacking user (the host's root), others get the
//! owner's read and execute bits. OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) remove what
//! lower layers put there. The tar crate's raw mode is used so that GNU long-name and PAX
//! extension records are read here, each capped at [`MAX_META_BYTES`], instead of being
//! buffered whole. Content bytes and entries are counted against [`UnpackLimits`] across
//! all layers of an image.

use std::{
    collections::HashSet,
    ffi::CString,
    io::Read,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

/// Longest GNU long-name or PAX extension record accepted.
pub const MAX_META_BYTES: u64 = 64 << 10;
/// Longest path accepted, bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// Deepest directory nesting accepted when unpacking or removing (path components).
pub const MAX_DEPTH: usize = 128;

/// Caps over all layers of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Sum of the sizes of the regular files, bytes.
    pub max_bytes: u64,
    /// Tar entries, whiteouts and directories included.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_bytes: 4 << 30,
            max_entries: 500_000,
        }
    }
}

/// What the layers used of the limits so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of regular files written so far.
    pub bytes: u64,
    /// Tar entries processed so far.
    pub entries: u64,
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// A gzip-compressed tar.
    Gzip,
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn cstr(b: &[u8]) -> Result<CString, String> {
    CString::new(b).map_err(|_| "a name contains NUL".to_string())
}

fn open_dir(path: &Path) -> Result<OwnedFd, String> {
    let c = cstr(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: `c` is a valid NUL-terminated string; the result is checked.
    #[allow(unsafe_code)]
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!("{}: {}", path.display(), errno()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    #[allow(unsafe_code)]
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(dir)
}

/// `openat(dir, name, O_DIRECTORY | O_NOFOLLOW)`; `Ok(None)` when it does not exist.
fn open_subdir(dir: &OwnedFd, name: &CString) -> std::io::Result<Option<OwnedFd>> {
    // SAFETY: valid descriptor and NUL-terminated name; the result is checked.
    #[allow(unsafe_code)]
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = errno();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    #[allow(unsafe_code)]
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Some(dir))
}

/// What is at `name` in `dir`, without following a symlink.
fn lstat_at(dir: &OwnedFd, name: &CString) -> Option<libc::stat> {
    // SAFETY: `libc::stat` is a plain C struct of integers, for which all-zero bytes are a
    // valid value; fstatat overwrites it.
    #[allow(unsafe_code)]
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is an open descriptor we borrow, `name` is NUL-terminated and `st` is a
    // valid, exclusively borrowed out-pointer for the duration of the call.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (r == 0).then_some(st)
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Removes `name` from `dir` (recursively for a directory, never following a symlink).
fn remove_at(dir: &OwnedFd, name: &CString, depth: usize) -> Result<(), String> {
    let Some(st) = lstat_at(dir, name) else {
        return Ok(());
    };
    if is_dir(&st) {
        if depth > MAX_DEPTH {
            return Err("directory nesting too deep to remove".into());
        }
        let sub = open_subdir(dir, name)
            .map_err(|e| format!("{}: {e}", name.to_string_lossy()))?
            .ok_or("directory vanished")?;
        clear_dir(&sub, &HashSet::new(), &[], depth + 1)?;
        // SAFETY: valid open descriptor and NUL-terminated name, both borrowed for the call.
        #[allow(unsafe_code)]
        let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
        if r != 0 {
            return Err(format!("rmdir {}: {}", name.to_string_lossy(), errno()));
        }
    } else {
        // SAFETY: valid open descriptor and NUL-terminated name, both borrowed for the call.
        #[allow(unsafe_code)]
        let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
        if r != 0 {
            return Err(format!("unlink {}: {}", name.to_string_lossy(), errno()));
        }
    }
    Ok(())
}

/// The names in `dir` (read through `/proc/self/fd`, which names this very directory).
fn list(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, String> {
    let p = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let rd = std::fs::read_dir(&p).map_err(|e| format!("listing a directory: {e}"))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| format!("listing a directory: {e}"))?;
        v.push(e.file_name().as_encoded_bytes().to_vec());
    }
    Ok(v)
}

/// Removes everything in `dir` whose path (`prefix` + name) is not in `keep`.
fn clear_dir(
    dir: &OwnedFd,
    keep: &HashSet<Vec<Vec<u8>>>,
    prefix: &[Vec<u8>],
    depth: usize,
) -> Result<(), String> {
    for name in list(dir)? {
        let mut p = prefix.to_vec();
        p.push(name.clone());
        let c = cstr(&name)?;
        if keep.iter().any(|k| k.starts_with(&p)) {
            // This layer put something here: keep it, but clear what lower layers left in
            // a directory on the way.
            if lstat_at(dir, &c).is_some_and(|st| is_dir(&st)) {
                if depth > MAX_DEPTH {
                    return Err("directory nesting too deep".into());
                }
                let sub = open_subdir(dir, &c)
                    .map_err(|e| format!("{}: {e}", c.to_string_lossy()))?
                    .ok_or("directory vanished")?;
                clear_dir(&sub, keep, &p, depth + 1)?;
            }
            continue;
        }
        remove_at(dir, &c, depth)?;
    }
    Ok(())
}

/// Splits a tar path into its components, refusing absolute paths, `..` and oversize.
pub fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let shown = String::from_utf8_lossy(raw);
    if raw.len() > MAX_PATH_BYTES {
        return Err(format!("path longer than {MAX_PATH_BYTES} bytes"));
    }
    if raw.first() == Some(&b'/') {
        return Err(format!("absolute path {shown:?} refused"));
    }
    if raw.contains(&0) {
        return Err(format!("path {shown:?} contains NUL"));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(format!("path {shown:?} with '..' refused")),
            c => out.push(c.to_vec()),
        }
    }
    if out.len() > MAX_DEPTH {
        return Err(format!("path {shown:?} nested deeper than {MAX_DEPTH}"));
    }
    Ok(out)
}

/// Opens the parent directory of `comps` under `root`, creating missing directories (mode
/// 0755) and refusing any component that is a symlink or not a directory.
fn walk_parent(root: &OwnedFd, comps: &[Vec<u8>], shown: &str) -> Result<OwnedFd, String> {
    // SAFETY: dup of a valid descriptor; the result is checked.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::fcntl(root.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("dup: {}", errno()));
    }
    // SAFETY: fresh descriptor we own.
    #[allow(unsafe_code)]
    let mut cur = unsafe { OwnedFd::from_raw_fd(fd) };
    for c in &comps[..comps.len().saturating_sub(1)] {
        let name = cstr(c)?;
        let next = match open_subdir(&cur, &name) {
            Ok(Some(d)) => d,
            Ok(None) => {
                // SAFETY: valid descriptor and name.
                #[allow(unsafe_code)]
                if unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
                    return Err(format!("{shown}: mkdir: {}", errno()));
                }
                open_subdir(&cur, &name)
                    .map_err(|e| format!("{shown}: {e}"))?
                    .ok_or_else(|| format!("{shown}: directory vanished"))?
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                return Err(format!(
                    "{shown}: goes through {:?}, a symlink or not a directory: refused",
                    String::from_utf8_lossy(c)
                ))
            }
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        cur = next;
    }
    Ok(cur)
}

/// The mode a file gets: permission bits only (no setuid, setgid, sticky), and others may
/// read and execute what the owner may (the workload's users are "others" on the host).
pub fn sanitize_mode(mode: u32) -> u32 {
    let m = mode & 0o777;
    m | ((m >> 6) & 0o5)
}

/// One layer being applied.
struct Layer<'a> {
    root: &'a OwnedFd,
    limits: &'a UnpackLimits,
    usage: &'a mut Usage,
    /// Paths this layer created (an opaque whiteout keeps them).
    created: HashSet<Vec<Vec<u8>>>,
}

impl Layer<'_> {
    fn apply<R: Read>(&mut self, blob: R) -> Result<(), String> {
        let mut ar = tar::Archive::new(blob);
        let entries = ar.entries().map_err(|e| format!("layer: {e}"))?.raw(true);
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Vec<u8>> = None;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("layer: {e}"))?;
            let t = entry.header().entry_type();
            self.usage.entries += 1;
            if self.usage.entries > self.limits.max_entries {
                return Err(format!(
                    "image has more than {} entries",
                    self.limits.max_entries
                ));
            }
            if t.is_gnu_longname() || t.is_gnu_longlink() || t.is_pax_local_extensions() {
                let size = entry.size();
                if size > MAX_META_BYTES {
                    return Err(format!(
                        "an extension record of {size} bytes (at most {MAX_META_BYTES})"
                    ));
                }
                let mut v = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut v)
                    .map_err(|e| format!("layer: {e}"))?;
                let slot = if t.is_gnu_longname() {
                    &mut long_name
                } else if t.is_gnu_longlink() {
                    &mut long_link
                } else {
                    &mut pax
                };
                if slot.replace(v).is_some() {
                    return Err("two extension records for one entry".into());
                }
                continue;
            }
            if t.is_pax_global_extensions() {
                continue;
            }
            let (mut path, mut link) = (
                entry.header().path_bytes().into_owned(),
                entry.header().link_name_bytes().map(|c| c.into_owned()),
            );
            if let Some(mut n) = long_name.take() {
                while n.last() == Some(&0) {
                    n.pop();
                }
                path = n;
            }
            if let Some(mut n) = long_link.take() {
                while n.last() == Some(&0) {
                    n.pop();
                }
                link = Some(n);
            }
            if let Some(p) = pax.take() {
                for ext in tar::PaxExtensions::new(&p) {
                    let ext = ext.map_err(|e| format!("PAX record: {e}"))?;
                    match ext.key_bytes() {
                        b"path" => path = ext.value_bytes().to_vec(),
                        b"linkpath" => link = Some(ext.value_bytes().to_vec()),
                        b"size" => return Err("PAX size (files over 8 GiB) refused".into()),
                        _ => {}
                    }
                }
            }
            self.entry(&mut entry, t, &path, link.as_deref())?;
        }
        Ok(())
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        t: tar::EntryType,
        path: &[u8],
        link: Option<&[u8]>,
    ) -> Result<(), String> {
        let shown = String::from_utf8_lossy(path).into_owned();
        let comps = components(path)?;
        let Some(last) = comps.last() else {
            return Ok(()); // the root itself ("./")
        };
        let parent = walk_parent(self.root, &comps, &shown)?;
        let parent_path = &comps[..comps.len() - 1];
        if last.as_slice() == b".wh..wh..opq" {
            return clear_dir(&parent, &self.created, parent_path, 0);
        }
        if let Some(hidden) = last.strip_prefix(b".wh.") {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(format!("{shown}: bad whiteout"));
            }
            return remove_at(&parent, &cstr(hidden)?, 0);
        }
        let name = cstr(last)?;
        let mode = sanitize_mode(entry.header().mode().unwrap_or(0o644));
        let existing = lstat_at(&parent, &name);
        match t {
            tar::EntryType::Directory => {
                match existing {
                    Some(st) if is_dir(&st) => {}
                    Some(_) => {
                        remove_at(&parent, &name, 0)?;
                        mkdir(&parent, &name, &shown)?;
                    }
                    None => mkdir(&parent, &name, &shown)?,
                }
                #[allow(unsafe_code)]
                // SAFETY: valid descriptor and name; mode bits only.
                if unsafe {
                    libc::fchmodat(
                        parent.as_raw_fd(),
                        name.as_ptr(),
                        (mode | 0o700) as libc::mode_t,
                        0,
                    )
                } != 0
                {
                    return Err(format!("{shown}: chmod: {}", errno()));
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                self.usage.bytes = self.usage.bytes.saturating_add(size);
                if self.usage.bytes > self.limits.max_bytes {
                    return Err(format!(
                        "image unpacks to more than {} bytes",
                        self.limits.max_bytes
                    ));
                }
                if existing.is_some() {
                    remove_at(&parent, &name, 0)?;
                }
                #[allow(unsafe_code)]
                // SAFETY: valid descriptor and name; the result is checked.
                let fd = unsafe {
                    libc::openat(
                        parent.as_raw_fd(),
                        name.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600 as libc::c_uint,
                    )
                };
                if fd < 0 {
                    return Err(format!("{shown}: create: {}", errno()));
                }
                #[allow(unsafe_code)]
                // SAFETY: fresh descriptor we own.
                let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                let n = std::io::copy(&mut entry.take(size), &mut f)
                    .map_err(|e| format!("{shown}: {e}"))?;
                if n != size {
                    return Err(format!("{shown}: layer ends inside the file"));
                }
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|e| format!("{shown}: chmod: {e}"))?;
            }
            tar::EntryType::Symlink => {
                let target = link.ok_or_else(|| format!("{shown}: symlink without target"))?;
                if target.is_empty() || target.len() > MAX_PATH_BYTES {
                    return Err(format!("{shown}: bad symlink target"));
                }
                if existing.is_some() {
                    remove_at(&parent, &name, 0)?;
                }
                let target = cstr(target)?;
                #[allow(unsafe_code)]
                // SAFETY: valid strings and descriptor. The link is created, never followed.
                if unsafe { libc::symlinkat(target.as_ptr(), parent.as_raw_fd(), name.as_ptr()) }
                    != 0
                {
                    return Err(format!("{shown}: symlink: {}", errno()));
                }
            }
            tar::EntryType::Link => {
                let target = link.ok_or_else(|| format!("{shown}: hard link without target"))?;
                let tshown = String::from_utf8_lossy(target).into_owned();
                let tcomps = components(target)?;
                let Some(tlast) = tcomps.last() else {
                    return Err(format!("{shown}: hard link to the root"));
                };
                let tparent = walk_parent(self.root, &tcomps, &tshown)?;
                let tname = cstr(tlast)?;
                match lstat_at(&tparent, &tname) {
                    Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {}
                    _ => {
                        return Err(format!(
                            "{shown}: hard link to {tshown:?}, not a regular file of the image"
                        ))
                    }
                }
                if existing.is_some() {
                    remove_at(&parent, &name, 0)?;
                }
                #[allow(unsafe_code)]
                // SAFETY: valid descriptors and names; flags 0: the target is not followed.
                if unsafe {
                    libc::linkat(
                        tparent.as_raw_fd(),
                        tname.as_ptr(),
                        parent.as_raw_fd(),
                        name.as_ptr(),
                        0,
                    )
                } != 0
                {
                    return Err(format!("{shown}: link: {}", errno()));
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(format!("{shown}: device node refused"))
            }
            tar::EntryType::Fifo => return Err(format!("{shown}: fifo refused")),
            other => return Err(format!("{shown}: tar entry type {other:?} refused")),
        }
        self.created.insert(comps);
        Ok(())
    }
}

fn mkdir(parent: &OwnedFd, name: &CString, shown: &str) -> Result<(), String> {
    // SAFETY: valid descriptor and NUL-terminated name, both borrowed for the call.
    #[allow(unsafe_code)]
    if unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) } != 0 {
        return Err(format!("{shown}: mkdir: {}", errno()));
    }
    Ok(())
}

/// Applies one layer blob onto the root directory `root` (which must exist), counting
/// against `limits` in `usage`.
pub fn apply_layer<R: Read>(
    root: &Path,
    blob: R,
    compression: Compression,
    limits: &UnpackLimits,
    usage: &mut Usage,
) -> Result<(), String> {
    let root_fd = open_dir(root)?;
    let mut layer = Layer {
        root: &root_fd,
        limits,
        usage,
        created: HashSet::new(),
    };
    match compression {
        Compression::None => layer.apply(blob),
        Compression::Gzip => layer.apply(flate2::read::GzDecoder::new(blob)),
    }
}

/// Creates the directories the runtime mounts over (`/proc`, `/dev`, `/sys`, `/tmp`,
/// `/work`, `/data`) when the image lacks them; refuses an image where one is not a
/// directory.
pub fn ensure_mountpoints(root: &Path) -> Result<(), String> {
    let root_fd = open_dir(root)?;
    for d in ["proc", "dev", "sys", "tmp", "work", "data"] {
        let name = cstr(d.as_bytes())?;
        match lstat_at(&root_fd, &name) {
            Some(st) if is_dir(&st) => {}
            Some(_) => return Err(format!("the image's /{d} is not a directory")),
            None => mkdir(&root_fd, &name, d)?,
        }
    }
    Ok(())
}
