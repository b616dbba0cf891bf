from swarm_ray.cli import main

raise SystemExit(main())
