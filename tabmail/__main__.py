from tabmail.launcher import main

raise SystemExit(main())
