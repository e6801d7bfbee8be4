#include "serving/metrics.h"

#include <thread>

#include <gtest/gtest.h>

namespace dmue::serving {
namespace {

TEST(MetricsTest, RendersCountersGaugesAndHistograms) {
  MetricsRegistry registry;
  Metric* requests = registry.AddCounter("requests_total", "Requests.");
  Metric* inflight = registry.AddGauge("in_flight", "In flight.");
  Metric* latency = registry.AddHistogram("latency_seconds", "Latency.", {0.1, 1});
  requests->Add(1, {{"route", "/a"}, {"code", "200"}});
  requests->Add(2, {{"route", "/a"}, {"code", "200"}});
  requests->Add(1, {{"route", "/b\"x"}, {"code", "404"}});
  inflight->Add(3);
  inflight->Add(-1);
  latency->Observe(0.05);
  latency->Observe(0.5);
  latency->Observe(5);
  const std::string text = registry.RenderText();
  EXPECT_NE(text.find("# TYPE requests_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("requests_total{route=\"/a\",code=\"200\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("requests_total{route=\"/b\\\"x\",code=\"404\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("in_flight 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_sum 5.55\n"), std::string::npos) << text;
  EXPECT_NE(text.find("latency_seconds_count 3\n"), std::string::npos) << text;
  EXPECT_EQ(latency->Value(), 3);
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry registry;
  Metric* c = registry.AddCounter("c_total", "C.");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([c] {
      for (int i = 0; i < 10000; ++i) c->Add(1, {{"k", "v"}});
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->Value({{"k", "v"}}), 40000);
}

}  // namespace
}  // namespace dmue::serving
