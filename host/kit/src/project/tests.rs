use super::*;

/// Every file of a new project, by path.
fn written(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("inside").display().to_string();
                out.push((rel, std::fs::read_to_string(&p).expect("text")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_new_project_is_complete_and_filled_in_every_language() {
    for lang in Lang::ALL {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pay-guard");
        let created = create(&dir, lang, None).expect("created");
        assert_eq!(created.name, "pay-guard");
        let files = written(&dir);
        assert_eq!(files.len(), created.files.len(), "{lang}");
        for (path, text) in &files {
            assert!(
                !text.contains("{{"),
                "{lang}: a placeholder is left in {path}"
            );
        }
        // The project file reads back, naming the entry that exists.
        let project = Project::read(&dir).expect("arbiter.toml");
        assert_eq!(project.lang, lang);
        assert_eq!(project.plugin, "pay-guard");
        assert!(project.source.ends_with(templates::source(lang)));
        // The set is valid and declares the starter's rules.
        let manifest = std::fs::read_to_string(dir.join("policy-set.toml")).expect("manifest");
        let m = arbiter_core::Manifest::parse(
            &manifest,
            "policy-set.toml",
            arbiter_core::Limits::default(),
        )
        .expect("a valid set");
        assert_eq!(m.plugins[0].path, "build/pay-guard.wasm");
        assert_eq!(
            m.plugins[0].rules,
            [
                "agent-privileged-action",
                "prod-change-needs-approval",
                "permitted"
            ]
        );
        // The WIT is the host's, byte for byte.
        for (path, text) in templates::WIT {
            assert_eq!(std::fs::read_to_string(dir.join(path)).expect("wit"), text);
        }
    }
}

#[test]
fn the_rust_sdk_finds_the_project_s_wit() {
    let (from, to) = templates::RUST_SDK_WIT_PATH;
    let sdk = templates::files(Lang::Rust)
        .iter()
        .find(|(p, _)| *p == "sdk/src/lib.rs")
        .expect("sdk lib.rs");
    assert!(
        sdk.1.contains(from),
        "the repository SDK's WIT path changed"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    create(&tmp.path().join("p"), Lang::Rust, None).expect("created");
    let lib = std::fs::read_to_string(tmp.path().join("p/sdk/src/lib.rs")).expect("lib");
    assert!(lib.contains(to) && !lib.contains(from));
}

#[test]
fn names_are_checked_and_nothing_is_overwritten() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for bad in ["Pay", "9lives", "a_b", "trailing-", "", &"x".repeat(65)] {
        let err = create(&tmp.path().join("d"), Lang::C, Some(bad)).expect_err(bad);
        assert!(
            err.to_string().contains("cannot name a project"),
            "{bad}: {err}"
        );
    }
    assert!(
        !tmp.path().join("d").exists(),
        "nothing written for a bad name"
    );
    let dir = tmp.path().join("taken");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("mine.txt"), "keep").expect("write");
    let err = create(&dir, Lang::Rust, None).expect_err("not empty");
    assert!(err.to_string().contains("is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("mine.txt")).expect("kept"),
        "keep"
    );
    // An empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    create(&empty, Lang::Js, None).expect("an empty directory is used");
}

#[test]
fn a_project_file_mistake_names_its_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("p");
    create(&dir, Lang::Python, None).expect("created");
    let file = dir.join(PROJECT_FILE);
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replace("source = \"src/rules.py\"", "source = \"../outside.py\""),
    )
    .expect("write");
    let err = Project::read(&dir).expect_err("outside");
    let KitError::Project { line, message, .. } = &err else {
        panic!("{err}");
    };
    assert!(message.contains("outside the project"), "{err}");
    assert_eq!(
        *line,
        text.lines()
            .position(|l| l.starts_with("source"))
            .expect("line")
            + 1
    );
    std::fs::write(&file, text.replace("plugin = ", "plugins = ")).expect("write");
    let err = Project::read(&dir).expect_err("unknown key");
    assert!(err.to_string().contains("plugins"), "{err}");
}

#[test]
fn wasi_false_is_for_rust_only_and_must_be_a_boolean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Rust: off when asked, on by default.
    let rust = tmp.path().join("r");
    create(&rust, Lang::Rust, None).expect("created");
    assert!(Project::read(&rust).expect("read").wasi, "WASI by default");
    let file = rust.join(PROJECT_FILE);
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, format!("{text}wasi = false\n")).expect("write");
    assert!(!Project::read(&rust).expect("read").wasi);
    std::fs::write(&file, format!("{text}wasi = \"no\"\n")).expect("write");
    let err = Project::read(&rust).expect_err("not a boolean");
    let KitError::Project { line, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*line, text.lines().count() + 1, "{err}");
    // Another language: refused, naming the line.
    let python = tmp.path().join("p");
    create(&python, Lang::Python, None).expect("created");
    let file = python.join(PROJECT_FILE);
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, format!("{text}wasi = false\n")).expect("write");
    let err = Project::read(&python).expect_err("python");
    let KitError::Project { line, message, .. } = &err else {
        panic!("{err}");
    };
    assert!(message.contains("for Rust projects"), "{err}");
    assert_eq!(*line, text.lines().count() + 1, "{err}");
}
