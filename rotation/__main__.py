from rotation.cli import main

raise SystemExit(main())
