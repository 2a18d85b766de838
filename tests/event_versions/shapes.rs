//! The upcasters of `versions.profile` that the current build (`event_versions.rs`) and the newer
//! one (`newer_build.rs`) share, as two builds of one application would.

use serde_json::Value;

/// Version 1 to 2: `user` is renamed `login`.
pub(crate) fn profile_v1_to_v2(mut value: Value) -> Result<Value, String> {
    let object = value
        .as_object_mut()
        .ok_or("a profile of version 1 is a JSON object")?;
    let user = object
        .remove("user")
        .ok_or("a profile of version 1 has a `user`")?;
    object.insert("login".to_owned(), user);
    Ok(value)
}

/// Version 2 to 3: `name` ("Jane Doe") is split into `first` and `last`.
pub(crate) fn profile_v2_to_v3(mut value: Value) -> Result<Value, String> {
    let object = value
        .as_object_mut()
        .ok_or("a profile of version 2 is a JSON object")?;
    let name = object
        .remove("name")
        .ok_or("a profile of version 2 has a `name`")?;
    let name = name.as_str().ok_or("`name` is not text")?;
    let (first, last) = name
        .split_once(' ')
        .ok_or_else(|| format!("`name` {name:?} has no space to split it at"))?;
    object.insert("first".to_owned(), first.into());
    object.insert("last".to_owned(), last.into());
    Ok(value)
}
