#![no_main]
//! A site's robots.txt (from the site) and a path to check against it: the first line is the
//! path, the rest the file.

use libfuzzer_sys::fuzz_target;
use parse::site::robots::Robots;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (path, robots) = text.split_once('\n').unwrap_or(("/", &text));
    let rules = Robots::parse(robots, "LariatBot");
    let _ = rules.allows(path);
    assert!(
        Robots::allow_all().allows(path),
        "allow_all allows every path"
    );
});
