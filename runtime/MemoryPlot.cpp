//===- MemoryPlot.cpp - Live bytes over the schedule, as SVG ----------------===//
#include "runtime/MemoryReport.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace longctx {
namespace {

std::string escapeXml(const std::string &text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '&': out += "&amp;"; break;
    case '"': out += "&quot;"; break;
    default: out += c;
    }
  }
  return out;
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

} // namespace

std::string memoryPlotSvg(const MemoryReport &r, const std::string &title) {
  constexpr double kWidth = 960, kHeight = 480, kLeft = 90, kRight = 180, kTop = 40, kBottom = 50;
  const double plotW = kWidth - kLeft - kRight, plotH = kHeight - kTop - kBottom;
  static const char *kColors[kNumArenaCategories] = {"#d62728", "#1f77b4", "#bbbbbb", "#2ca02c",
                                                      "#9467bd"};
  const size_t points = r.timeline.size();
  const double top = double(std::max<uint64_t>({r.arenaBytes, r.loadBytes, 1})) * 1.08;
  auto x = [&](size_t step) {
    return kLeft + (points > 1 ? plotW * double(step) / double(points - 1) : 0.0);
  };
  auto y = [&](double bytes) { return kTop + plotH * (1.0 - bytes / top); };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
      << kHeight << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kLeft << "\" y=\"22\" font-size=\"15\">" << escapeXml(title) << "</text>\n";
  // One band per category, stacked in enum order: bottom is gradients.
  std::vector<double> below(points, 0.0);
  for (size_t c = 0; c < kNumArenaCategories; ++c) {
    std::ostringstream pts;
    for (size_t s = 0; s < points; ++s)
      pts << fixed(x(s)) << "," << fixed(y(below[s] + double(r.timeline[s][c]))) << " ";
    for (size_t s = points; s-- > 0;)
      pts << fixed(x(s)) << "," << fixed(y(below[s])) << " ";
    for (size_t s = 0; s < points; ++s)
      below[s] += double(r.timeline[s][c]);
    svg << "<polygon fill=\"" << kColors[c] << "\" fill-opacity=\"0.8\" stroke=\"none\" points=\""
        << pts.str() << "\"><title>" << memoryCategoryName(MemoryCategory(c))
        << "</title></polygon>\n";
  }
  auto hline = [&](double bytes, const char *color, const std::string &label) {
    svg << "<line x1=\"" << kLeft << "\" x2=\"" << fixed(kLeft + plotW) << "\" y1=\""
        << fixed(y(bytes)) << "\" y2=\"" << fixed(y(bytes)) << "\" stroke=\"" << color
        << "\" stroke-dasharray=\"6,3\"/>\n<text x=\"" << fixed(kLeft + plotW + 6) << "\" y=\""
        << fixed(y(bytes) + 4) << "\" fill=\"" << color << "\">" << escapeXml(label) << "</text>\n";
  };
  hline(double(r.arenaBytes), "black", "arena " + formatBytes(r.arenaBytes));
  hline(double(r.loadBytes), "#9467bd", "LOAD " + formatBytes(r.loadBytes));
  if (r.peakStep >= 0)
    svg << "<line x1=\"" << fixed(x(size_t(r.peakStep))) << "\" x2=\"" << fixed(x(size_t(r.peakStep)))
        << "\" y1=\"" << kTop << "\" y2=\"" << fixed(kTop + plotH)
        << "\" stroke=\"#9467bd\" stroke-width=\"0.8\"><title>peak: " << escapeXml(r.peakOp)
        << "</title></line>\n";
  // Axes: bytes on the left (five ticks), steps along the bottom.
  svg << "<line x1=\"" << kLeft << "\" y1=\"" << kTop << "\" x2=\"" << kLeft << "\" y2=\""
      << fixed(kTop + plotH) << "\" stroke=\"black\"/>\n<line x1=\"" << kLeft << "\" y1=\""
      << fixed(kTop + plotH) << "\" x2=\"" << fixed(kLeft + plotW) << "\" y2=\""
      << fixed(kTop + plotH) << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    double bytes = top * i / 4.0;
    svg << "<text x=\"" << kLeft - 6 << "\" y=\"" << fixed(y(bytes) + 4)
        << "\" text-anchor=\"end\">" << formatBytes(uint64_t(bytes)) << "</text>\n";
  }
  svg << "<text x=\"" << fixed(kLeft + plotW / 2) << "\" y=\"" << kHeight - 12
      << "\" text-anchor=\"middle\">schedule step (0 .. " << (points ? points - 1 : 0)
      << ")</text>\n";
  for (size_t c = 0; c < kNumArenaCategories; ++c) {
    double ly = kTop + 80 + 18.0 * double(c);
    svg << "<rect x=\"" << fixed(kLeft + plotW + 6) << "\" y=\"" << fixed(ly - 10)
        << "\" width=\"12\" height=\"12\" fill=\"" << kColors[c] << "\"/><text x=\""
        << fixed(kLeft + plotW + 22) << "\" y=\"" << fixed(ly) << "\">"
        << memoryCategoryName(MemoryCategory(c)) << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

} // namespace longctx
