// The report page's inline stylesheet and script (sim/src/report_assets.cpp), kept apart from
// the C++ that renders the page.
#pragma once

#include <string_view>

namespace statewall::sim::detail {

// The contents of the page's <style> element.
extern const std::string_view kReportCss;
// The contents of the page's last <script> element: reads the JSON in <script id="report-data">,
// draws the connection list with its ladders, the search box and the pager. Plain JS, no
// framework; every string from the data is inserted with textContent / createTextNode.
extern const std::string_view kReportJs;

}  // namespace statewall::sim::detail
