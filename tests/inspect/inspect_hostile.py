"""Text that would run as script if any part of the report put data into HTML unescaped (imported by the tests
of this folder; not a test module)."""

HOSTILE = ('What is <script>window.__egoforge_pwned = 1</script> held? '
           '<img src=x onerror="window.__egoforge_pwned = 2"> </script><!-- & "quotes" \u2028')
HOSTILE_OPTION = '<b onmouseover="window.__egoforge_pwned = 3">red</b>'
HOSTILE_RESPONSE = '{"prediction": "Z", "reason": "</script><script>window.__egoforge_pwned = 4</script>"}'
