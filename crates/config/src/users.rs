//! Users and groups, resolved when the configuration loads (as xinetd does), so the
//! daemon's child needs no name service between fork and exec.

use std::ffi::CString;

use nix::unistd::{Gid, Group, User, getgrouplist};

/// A resolved `user` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserEntry {
    pub(crate) name: Option<String>,
    pub(crate) uid: u32,
    /// The login group; for a numeric user xinetd uses the same number.
    pub(crate) gid: u32,
}

/// A name from the password database, or a number (which need not exist there).
pub(crate) fn user(value: &str) -> Result<UserEntry, String> {
    if let Ok(uid) = value.parse::<u32>() {
        return Ok(UserEntry {
            name: None,
            uid,
            gid: uid,
        });
    }
    match User::from_name(value) {
        Ok(Some(user)) => Ok(UserEntry {
            name: Some(user.name),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }),
        Ok(None) => Err(format!("unknown user '{value}'")),
        Err(e) => Err(format!("cannot look up user '{value}': {e}")),
    }
}

/// A group name or number.
pub(crate) fn group(value: &str) -> Result<u32, String> {
    if let Ok(gid) = value.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(value) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err(format!("unknown group '{value}'")),
        Err(e) => Err(format!("cannot look up group '{value}': {e}")),
    }
}

/// What initgroups(name, gid) would set: the user's groups plus `gid`.
pub(crate) fn supplementary(name: &str, gid: u32) -> Result<Vec<u32>, String> {
    let c_name = CString::new(name).map_err(|_| format!("user name '{name}' contains NUL"))?;
    let groups = getgrouplist(&c_name, Gid::from_raw(gid))
        .map_err(|e| format!("cannot list the groups of '{name}': {e}"))?;
    let mut gids: Vec<u32> = groups.into_iter().map(Gid::as_raw).collect();
    gids.sort_unstable();
    gids.dedup();
    Ok(gids)
}
