//! The dependency rule: no tokio, hyper or axum in gmc-client's normal dependency tree,
//! with or without features.

use std::process::Command;

fn tree(extra: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "gmc-client",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn no_async_runtime_or_http_stack_in_the_dependency_tree() {
    for extra in [&[][..], &["--all-features"][..]] {
        let t = tree(extra);
        assert!(t.contains("gmc-client"), "{t}");
        for banned in ["tokio", "hyper", "axum"] {
            let hit = t
                .lines()
                .find(|l| l.split_whitespace().next() == Some(banned));
            assert!(
                hit.is_none(),
                "{banned} is in the tree ({extra:?}): {hit:?}"
            );
        }
    }
}
