// The checker must catch each way a backend can break the contract: every
// test below breaks ReferenceBackend in one way and expects an error.
#include "tests/testing/checked_backend.h"

#include <cstdint>
#include <optional>
#include <random>

#include "gtest/gtest.h"
#include "tests/testing/reference_backend.h"

namespace l4re_ma {
namespace {

PageRun MakeRun(uint64_t first, uint64_t pages) { return {FrameNumber(first), PageCount(pages)}; }

// Forwards everything to a ReferenceBackend; subclasses break one thing.
class ForwardingBackend : public PageBackend {
 public:
  explicit ForwardingBackend(PageRun range) : inner_(range) {}
  absl::string_view name() const override { return "forwarding"; }
  PageRun range() const override { return inner_.range(); }
  std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override {
    return inner_.Allocate(pages, align);
  }
  bool Free(PageRun run) override { return inner_.Free(run); }
  BackendStats Stats() const override { return inner_.Stats(); }
  absl::Status CheckInvariants() const override { return inner_.CheckInvariants(); }

 protected:
  ReferenceBackend inner_;
};

TEST(CheckedBackendTest, CorrectBackendPasses) {
  ForwardingBackend b(MakeRun(511, 3000));
  CheckedBackend c(&b);
  ASSERT_TRUE(c.CheckFresh().ok()) << c.CheckFresh();
  std::mt19937_64 rng(1);
  for (int i = 0; i < 300; ++i) {
    auto f = c.Allocate(PageCount(1 + rng() % 40), AlignOrder(rng() % 3 == 0 ? rng() % 6 : 0));
    ASSERT_TRUE(f.ok()) << f.status();
    if (i % 3 == 2) {
      ASSERT_TRUE(c.FreeLiveRun(rng() % c.live_runs().size()).ok());
    }
    if (i % 50 == 0) {
      ASSERT_TRUE(c.CheckDeep().ok()) << c.CheckDeep();
    }
  }
  ASSERT_FALSE(c.live_runs().empty());
  const PageRun r = c.live_runs()[0];
  EXPECT_TRUE(c.ExpectFreeRejected({r.first, r.pages + PageCount(1)}).ok());
  EXPECT_TRUE(c.ExpectFreeRejected(MakeRun(0, 1)).ok());
  EXPECT_FALSE(c.ExpectFreeRejected(r).ok()) << "a live run is a harness error";
  EXPECT_TRUE(c.FreeAll(rng).ok());
  EXPECT_EQ(c.model().free_pages(), PageCount(3000));
}

TEST(CheckedBackendTest, CatchesIgnoredAlignment) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder) override {
      return inner_.Allocate(pages, AlignOrder(0));
    }
  } b(MakeRun(1, 100));
  CheckedBackend c(&b);
  auto f = c.Allocate(PageCount(1), AlignOrder(3));
  EXPECT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("aligned"), absl::string_view::npos) << f.status();
}

TEST(CheckedBackendTest, CatchesOverlap) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override {
      auto f = inner_.Allocate(pages, align);
      return f ? std::optional<FrameNumber>(inner_.range().first) : std::nullopt;
    }
  } b(MakeRun(10, 100));
  CheckedBackend c(&b);
  ASSERT_TRUE(c.Allocate(PageCount(4), AlignOrder(0)).ok());
  auto f = c.Allocate(PageCount(1), AlignOrder(0));
  EXPECT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("overlaps"), absl::string_view::npos) << f.status();
}

TEST(CheckedBackendTest, CatchesRunOutsideRange) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    std::optional<FrameNumber> Allocate(PageCount pages, AlignOrder align) override {
      auto f = inner_.Allocate(pages, align);
      if (f) *f = *f + PageCount(95);
      return f;
    }
  } b(MakeRun(10, 100));
  CheckedBackend c(&b);
  EXPECT_FALSE(c.Allocate(PageCount(8), AlignOrder(0)).ok());
}

TEST(CheckedBackendTest, CatchesAcceptedDoubleFree) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    bool Free(PageRun run) override {
      (void)inner_.Free(run);
      return true;
    }
  } b(MakeRun(10, 100));
  CheckedBackend c(&b);
  auto f = c.Allocate(PageCount(4), AlignOrder(0));
  ASSERT_TRUE(f.ok() && f->has_value());
  ASSERT_TRUE(c.Free({**f, PageCount(4)}).ok());
  EXPECT_FALSE(c.ExpectFreeRejected({**f, PageCount(4)}).ok());
}

TEST(CheckedBackendTest, CatchesRejectionThatChangesState) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    bool Free(PageRun run) override {
      if (inner_.Free(run)) return true;
      (void)inner_.Allocate(PageCount(1), AlignOrder(0));  // a leak on the error path
      return false;
    }
  } b(MakeRun(10, 100));
  CheckedBackend c(&b);
  EXPECT_FALSE(c.ExpectFreeRejected(MakeRun(20, 1)).ok());
}

TEST(CheckedBackendTest, CatchesLeakyFree) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    bool Free(PageRun) override { return true; }
  } b(MakeRun(10, 100));
  CheckedBackend c(&b);
  auto f = c.Allocate(PageCount(4), AlignOrder(0));
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_FALSE(c.Free({**f, PageCount(4)}).ok());
}

TEST(CheckedBackendTest, CatchesOverstatedLargestFreeRun) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    BackendStats Stats() const override {
      BackendStats s = inner_.Stats();
      s.largest_free_run = s.free_pages;
      return s;
    }
  } b(MakeRun(0, 100));
  CheckedBackend c(&b);
  ASSERT_TRUE(c.CheckFresh().ok());
  ASSERT_TRUE(c.Allocate(PageCount(10), AlignOrder(0)).ok());
  ASSERT_TRUE(c.Allocate(PageCount(10), AlignOrder(0)).ok());
  EXPECT_FALSE(c.Free(MakeRun(0, 10)).ok());  // 90 free, longest 80
  EXPECT_FALSE(c.CheckStats().ok());
}

TEST(CheckedBackendTest, CatchesUnderstatedLargestFreeRun) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    BackendStats Stats() const override {
      BackendStats s = inner_.Stats();
      s.largest_free_run = PageCount(s.largest_free_run.value() / 2);
      return s;
    }
  } b(MakeRun(0, 100));
  CheckedBackend c(&b);
  EXPECT_FALSE(c.CheckDeep().ok());
  CheckedBackend c2(&b);
  EXPECT_FALSE(c2.Allocate(PageCount(70), AlignOrder(0)).ok());
}

TEST(CheckedBackendTest, CatchesWrongSuperpageCount) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    BackendStats Stats() const override {
      BackendStats s = inner_.Stats();
      if (s.free_superpages > 0) --s.free_superpages;
      return s;
    }
  } b(MakeRun(512, 1024));
  CheckedBackend c(&b);
  EXPECT_FALSE(c.CheckFresh().ok());
}

TEST(CheckedBackendTest, CatchesBrokenInvariants) {
  struct Broken : ForwardingBackend {
    using ForwardingBackend::ForwardingBackend;
    absl::Status CheckInvariants() const override { return absl::InternalError("broken"); }
  } b(MakeRun(0, 100));
  CheckedBackend c(&b);
  EXPECT_FALSE(c.CheckFresh().ok());
  EXPECT_FALSE(c.CheckDeep().ok());
}

}  // namespace
}  // namespace l4re_ma
