/* test_graph_pull_workers — how a pull's tenants are dealt to worker
 * processes (graph_pull_deal) and how many workers there are by default
 * (graph_pull_workers_auto). The workers themselves are tested against the
 * fake Graph (tests/integration/test_pull_workers.sh). */
#include "t.h"
#include "graph/graph.h"

TEST(graph_pull_workers_auto_count)
{
	CHECK(graph_pull_workers_auto(100, 2) == 2);     /* one per core */
	CHECK(graph_pull_workers_auto(100, 64) == 6);    /* at most one per 16 tenants */
	CHECK(graph_pull_workers_auto(10, 8) == 1);      /* few tenants: in this process */
	CHECK(graph_pull_workers_auto(0, 8) == 1);
	CHECK(graph_pull_workers_auto(100000, 64) == GRAPH_PULL_WORKERS_MAX);
	CHECK(graph_pull_workers_auto(100, -1) == 1);    /* sysconf failed */
}

TEST(graph_pull_deal_heaviest_first_to_least_loaded)
{
	/* weights 1100, 200, 300, 150, 900, 100 over 2 workers:
	 * 1100 -> w0; 900 -> w1; 300 -> w1 (1200); 200 -> w0 (1300);
	 * 150 -> w1 (1350); 100 -> w0 (1400) */
	const long long weight[] = { 1100, 200, 300, 150, 900, 100 };
	int of[6];
	graph_pull_deal(weight, 6, 2, of);
	CHECK(of[0] == 0 && of[4] == 1 && of[2] == 1 && of[1] == 0 && of[3] == 1 && of[5] == 0);
	/* equal weights: dealt round in config order */
	const long long same[] = { 5, 5, 5, 5, 5 };
	int of2[5];
	graph_pull_deal(same, 5, 3, of2);
	CHECK(of2[0] == 0 && of2[1] == 1 && of2[2] == 2 && of2[3] == 0 && of2[4] == 1);
	/* one worker: everything to it */
	int of3[6];
	graph_pull_deal(weight, 6, 1, of3);
	for (int i = 0; i < 6; i++) CHECK(of3[i] == 0);
}
