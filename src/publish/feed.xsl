<?xml version="1.0" encoding="UTF-8"?>
<!-- bantin: shows an RSS 2.0 or Atom 1.0 feed opened in a browser as a readable page. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom dc">
  <xsl:output method="html" encoding="UTF-8" indent="yes"/>

  <xsl:template match="/">
    <html>
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="rss/channel/title | atom:feed/atom:title"/></title>
        <style>
          body { font: 1.05rem/1.55 system-ui, sans-serif; max-width: 46rem; margin: 0 auto; padding: 1rem; color: #222; }
          .note { background: #f3f3f3; padding: .75rem 1rem; border-radius: .4rem; }
          article { border-top: 1px solid #ddd; padding: .75rem 0; }
          h2 { font-size: 1.1rem; margin: 0 0 .25rem; }
          time, .meta { color: #666; font-size: .9rem; }
          code { word-break: break-all; }
        </style>
      </head>
      <body>
        <xsl:apply-templates select="rss/channel | atom:feed"/>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="rss/channel">
    <h1><xsl:value-of select="title"/></h1>
    <p><xsl:value-of select="description"/></p>
    <p class="note">This is a feed. Copy its address into a feed reader to subscribe:
      <code><xsl:value-of select="atom:link[@rel='self']/@href"/></code></p>
    <xsl:for-each select="item">
      <article>
        <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
        <div class="meta"><time><xsl:value-of select="pubDate"/></time>
          <xsl:if test="dc:creator"> · <xsl:value-of select="dc:creator"/></xsl:if></div>
        <p><xsl:value-of select="description"/></p>
      </article>
    </xsl:for-each>
  </xsl:template>

  <xsl:template match="atom:feed">
    <h1><xsl:value-of select="atom:title"/></h1>
    <p><xsl:value-of select="atom:subtitle"/></p>
    <p class="note">This is a feed. Copy its address into a feed reader to subscribe:
      <code><xsl:value-of select="atom:link[@rel='self']/@href"/></code></p>
    <xsl:for-each select="atom:entry">
      <article>
        <h2><a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h2>
        <div class="meta"><time><xsl:value-of select="atom:published"/></time>
          <xsl:if test="atom:author"> · <xsl:value-of select="atom:author/atom:name"/></xsl:if></div>
        <p><xsl:value-of select="atom:summary"/></p>
      </article>
    </xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
