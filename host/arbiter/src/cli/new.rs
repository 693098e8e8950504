//! `arbiter new`: writes a self-contained policy plugin project (see `arbiter_kit`).

use std::path::PathBuf;

use arbiter_kit::Lang;

/// Flags of `arbiter new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The project's language.
    #[arg(long, value_parser = parse_lang)]
    pub lang: Lang,
    /// The project name (the set's, the plugin's and the component's)
    /// [default: the directory's name].
    #[arg(long)]
    pub name: Option<String>,
    /// The directory to create (or an empty one): nothing is ever overwritten.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| {
        let known: Vec<&str> = Lang::ALL.iter().map(|l| l.as_str()).collect();
        format!(
            "`{s}` is not a language Arbiter can build; use {}",
            known.join(", ")
        )
    })
}

/// Runs the command; the result is the process exit code.
pub fn run(args: NewArgs) -> anyhow::Result<i32> {
    let created = arbiter_kit::create(&args.dir, args.lang, args.name.as_deref())?;
    let dir = created.dir.display();
    println!(
        "wrote the {} project `{}` in {dir} ({} files)",
        args.lang.display_name(),
        created.name,
        created.files.len()
    );
    println!("next:\n  arbiter build {dir}\n  arbiter test {dir}");
    Ok(0)
}
