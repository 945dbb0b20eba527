from kinema.cli.main import main

raise SystemExit(main())
