from tabmail.cli.main import main

raise SystemExit(main())
