//! Reading the server's own files for ingestion. A file is opened once and everything about it
//! is taken from what was opened: it must be a regular file (not a device, a FIFO or a socket),
//! its size is the opened file's, and no more than the limit is ever read. A folder source's
//! files are opened beneath its root without following any link (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel has it; elsewhere the path is
//! canonicalised and checked to lie beneath the root, and opened with `O_NOFOLLOW`), so nothing
//! swapped in after the folder was listed can point the read outside it.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// The bytes of the file at `path`, opened beneath `root` when given; at most `max_bytes` of
/// them (a bigger file is refused). The message says why a file could not be read.
pub fn read_file(path: &Path, root: Option<&Path>, max_bytes: u64) -> Result<Vec<u8>, String> {
    let file = match root {
        Some(root) => open_beneath(root, path),
        None => open(path, OFlags::empty()),
    }
    .map_err(|e| refusal(&e))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let too_big = |size: u64| {
        format!("file is {size} bytes, over the {max_bytes}-byte limit (ingest.max_file_bytes)")
    };
    if meta.len() > max_bytes {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    // it grew while it was read
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn refusal(e: &io::Error) -> String {
    match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
        Some(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV) => {
            "a link, or a path leading out of the source's folder: not followed".into()
        }
        _ => e.to_string(),
    }
}

/// Opens for reading without blocking (a FIFO would wait for a writer) and, with `extra`, more.
fn open(path: &Path, extra: OFlags) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | extra;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// Opens `path`, which must lie beneath `root`, following no link on the way.
fn open_beneath(root: &Path, path: &Path) -> io::Result<File> {
    let outside = || {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            "outside the source's folder",
        )
    };
    let relative = path.strip_prefix(root).map_err(|_| outside())?;
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::ResolveFlags;
        use rustix::io::Errno;
        // the root itself must still be the folder it was (not a link put in its place)
        let dir = open(root, OFlags::DIRECTORY | OFlags::NOFOLLOW)?;
        match rustix::fs::openat2(
            &dir,
            relative,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        ) {
            Ok(fd) => return Ok(File::from(fd)),
            // a kernel before 5.6, or a sandbox that refuses the call: check by hand below
            Err(Errno::NOSYS | Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // `path` lies beneath `root` (above): unchanged by resolving, it follows no link
    if path.canonicalize()? != path {
        return Err(io::Error::from_raw_os_error(
            rustix::io::Errno::LOOP.raw_os_error(),
        ));
    }
    open(path, OFlags::NOFOLLOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_beneath_their_root_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "the signing key").unwrap();
        std::fs::write(root.join("sub/ok.md"), "# fine").unwrap();
        std::os::unix::fs::symlink(&secret, root.join("link.md")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.md")).unwrap();
        let root = root.canonicalize().unwrap();

        let read = |rel: &str| read_file(&root.join(rel), Some(&root), 1 << 20);
        assert_eq!(read("sub/ok.md").unwrap(), b"# fine");
        for hostile in ["link.md", "up/secret", "zero.md", "sub/../../secret"] {
            let err = read(hostile).unwrap_err();
            assert!(!err.is_empty(), "{hostile}");
        }
        assert!(read_file(&secret, Some(&root), 1 << 20).is_err(), "outside");
        // a device is no file, whatever its size says; the limit counts what is read
        assert_eq!(
            read_file(Path::new("/dev/zero"), None, 10).unwrap_err(),
            "not a regular file"
        );
        assert!(
            read_file(&root.join("sub/ok.md"), Some(&root), 3)
                .unwrap_err()
                .contains("over the 3-byte limit")
        );
    }
}
