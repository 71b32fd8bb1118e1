/*
 * The page around the data (see html_page.h). The template
 * query/html/timeline.html holds three markers, @@CSS@@, @@JS@@ and
 * @@DATA@@, which become the style sheet, the script and the data. The data
 * goes through the JSON writer with '<' escaped, so nothing a process name
 * holds ("</script>") can end its <script> element early.
 */
#include "html_page.h"

#include <string.h>

/* Writes the template from p up to its next marker; returns the marker, or
 * NULL at the end of the template. */
static const char *copy_to_marker(FILE *f, const char *p)
{
    const char *m = strstr(p, "@@");
    fwrite(p, 1, m != NULL ? (size_t)(m - p) : strlen(p), f);
    return m;
}

int html_page_write(query_ctx *c, cJSON *header)
{
    FILE *f = c->w->f;
    const char *p = chq_html_page;
    const char *m;
    while ((m = copy_to_marker(f, p)) != NULL) {
        if (strncmp(m, "@@CSS@@", 7) == 0) {
            fputs(chq_html_css, f);
            p = m + 7;
        } else if (strncmp(m, "@@JS@@", 6) == 0) {
            fputs(chq_html_js, f);
            p = m + 6;
        } else if (strncmp(m, "@@DATA@@", 8) == 0) {
            if (html_data_write(c, header) != 0)
                return -1;
            header = NULL; /* freed by the writer */
            p = m + 8;
        } else {
            fputs("@@", f); /* not a marker */
            p = m + 2;
        }
    }
    cJSON_Delete(header); /* a template without @@DATA@@: nothing took it */
    return 0;
}
